// Package kerneltest is what the kernel fabrics' privileged tests share
// (datapath/kernel/ovs, bridge, bpf, ktrace): a lab deployed for one test
// and destroyed after it, and the check, once a package's tests are done,
// that they left no namespace and no process behind. Only tests import it.
package kerneltest
