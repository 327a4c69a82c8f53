package proxy

import (
	"net"
	"syscall"
)

// alive peeks at an idle connection without blocking: a connection the
// upstream closed reads as EOF or an error.
func alive(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var buf [1]byte
	live := true
	err = rc.Read(func(fd uintptr) bool {
		// EAGAIN: nothing to read, as it should be. EOF, an error, or
		// bytes nobody asked for all make the connection unusable.
		_, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		live = err == syscall.EAGAIN
		return true
	})
	return live && err == nil
}
