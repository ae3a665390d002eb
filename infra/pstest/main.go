// pstest: Google's in-memory Pub/Sub fake (cloud.google.com/go/pubsub/pstest) as a server on
// loopback, for the local emulator stack and the tests. Prints its address on the first line.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"cloud.google.com/go/pubsub/pstest"
)

func main() {
	// NOTE: Debian's pstest has only NewServer, which listens on a random loopback port.
	srv := pstest.NewServer()
	fmt.Println(srv.Addr)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
	srv.Close()
}
