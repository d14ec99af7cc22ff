//go:build !linux

package etcdlab

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }
