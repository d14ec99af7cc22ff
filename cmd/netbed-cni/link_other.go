//go:build !linux

package main

import "errors"

var errNotLinux = errors.New("netbed-cni wires pods with netlink and runs on Linux only")

type netlinkLinker struct{}

func (netlinkLinker) Setup(wiring) (wired, error)           { return wired{}, errNotLinux }
func (netlinkLinker) Teardown(string, string, string) error { return errNotLinux }
func (netlinkLinker) Check(wiring) error                    { return errNotLinux }
