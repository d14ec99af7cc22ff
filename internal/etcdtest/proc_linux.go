package etcdtest

import "syscall"

// sysProcAttr kills a member when the test process dies, so that a test
// binary killed by a timeout leaves no etcd behind.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
