// certpool loads the system certificate pool and prints how many roots it holds: in an image
// without CA certificates it prints 0 and TLS to any public server fails.
package main

import (
	"crypto/x509"
	"fmt"
	"os"
)

func main() {
	pool, err := x509.SystemCertPool()
	if err != nil {
		fmt.Fprintln(os.Stderr, "no system cert pool:", err)
		os.Exit(1)
	}
	//lint:ignore SA1019 on Linux the system pool is read from files, so Subjects is complete.
	n := len(pool.Subjects())
	fmt.Printf("system roots: %d\n", n)
	if n == 0 {
		os.Exit(1)
	}
}
