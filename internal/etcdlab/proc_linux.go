package etcdlab

import "syscall"

// sysProcAttr kills a member when the process that started it dies, so that a
// process killed (a test by its timeout) leaves no etcd behind.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
