// cgo imports "C": it cannot be built with CGO_ENABLED=0, and binpack go says so.
package main

/*
#include <stdlib.h>
static int answer(void) { return 42; }
*/
import "C"

import "fmt"

func main() {
	fmt.Println("answer:", int(C.answer()))
}
