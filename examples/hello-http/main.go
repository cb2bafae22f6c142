// hello-http answers every request with a greeting; it listens on $PORT (default 8080).
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
)

// greeting can be set at build time: -ldflags "-X main.greeting=..."
var greeting = "hello from binpack"

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s (uid %d, path %s)\n", greeting, os.Getuid(), r.URL.Path)
	})
	log.Printf("listening on :%s", port)
	log.Fatal(http.ListenAndServe(":"+port, nil))
}
