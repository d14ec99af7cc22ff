// Package clab reads and writes containerlab topology files (*.clab.yml),
// infers the netbed roles of nodes in files netbed did not write, and keeps
// netbed's own attributes in "netbed.*" node labels and link vars.
package clab
