package bfd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// State is a session's state (RFC 5880 section 4.1).
type State uint8

// States.
const (
	AdminDown State = 0
	Down      State = 1
	Init      State = 2
	Up        State = 3
)

func (s State) String() string {
	switch s {
	case AdminDown:
		return "admin-down"
	case Down:
		return "down"
	case Init:
		return "init"
	case Up:
		return "up"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Diag says why a session last left Up (section 4.1).
type Diag uint8

// Diagnostics used here.
const (
	DiagNone              Diag = 0
	DiagDetectExpired     Diag = 1 // control detection time expired
	DiagNeighborDown      Diag = 3 // neighbor signaled session down
	DiagAdministrative    Diag = 7
	packetLen                  = 24
	version                    = 1
	flagPoll                   = 0x20
	flagFinal                  = 0x10
	flagMultipoint             = 0x01
	flagDemand                 = 0x02
	flagAuth                   = 0x04
	flagControlPlaneIndep      = 0x08
)

// Packet is a BFD control packet without authentication.
type Packet struct {
	Diag       Diag
	State      State
	Poll       bool
	Final      bool
	DetectMult uint8
	MyDisc     uint32
	YourDisc   uint32
	// DesiredMinTx and RequiredMinRx are the sender's intervals
	// (microseconds on the wire).
	DesiredMinTx  time.Duration
	RequiredMinRx time.Duration
}

// ErrPacket marks a packet that section 6.8.6 says to discard.
var ErrPacket = errors.New("bfd: invalid control packet")

// Marshal appends p's 24 bytes to b.
func (p Packet) Marshal(b []byte) []byte {
	flags := byte(p.State) << 6
	if p.Poll {
		flags |= flagPoll
	}
	if p.Final {
		flags |= flagFinal
	}
	b = append(b, version<<5|byte(p.Diag)&0x1f, flags, p.DetectMult, packetLen)
	b = binary.BigEndian.AppendUint32(b, p.MyDisc)
	b = binary.BigEndian.AppendUint32(b, p.YourDisc)
	b = binary.BigEndian.AppendUint32(b, uint32(p.DesiredMinTx/time.Microsecond))
	b = binary.BigEndian.AppendUint32(b, uint32(p.RequiredMinRx/time.Microsecond))
	return binary.BigEndian.AppendUint32(b, 0) // no echo
}

// Parse decodes b, checking what section 6.8.6 checks before a packet
// reaches a session: version 1, a length that fits, a detect multiplier,
// no multipoint bit, no authentication (not supported), and a nonzero
// My Discriminator.
func Parse(b []byte) (Packet, error) {
	if len(b) < packetLen {
		return Packet{}, fmt.Errorf("%w: %d bytes", ErrPacket, len(b))
	}
	if b[0]>>5 != version {
		return Packet{}, fmt.Errorf("%w: version %d", ErrPacket, b[0]>>5)
	}
	if n := int(b[3]); n < packetLen || n > len(b) {
		return Packet{}, fmt.Errorf("%w: length %d of %d bytes", ErrPacket, n, len(b))
	}
	p := Packet{Diag: Diag(b[0] & 0x1f), State: State(b[1] >> 6), Poll: b[1]&flagPoll != 0, Final: b[1]&flagFinal != 0,
		DetectMult: b[2], MyDisc: binary.BigEndian.Uint32(b[4:]), YourDisc: binary.BigEndian.Uint32(b[8:]),
		DesiredMinTx:  time.Duration(binary.BigEndian.Uint32(b[12:])) * time.Microsecond,
		RequiredMinRx: time.Duration(binary.BigEndian.Uint32(b[16:])) * time.Microsecond}
	switch {
	case p.DetectMult == 0:
		return Packet{}, fmt.Errorf("%w: detect multiplier 0", ErrPacket)
	case b[1]&flagMultipoint != 0:
		return Packet{}, fmt.Errorf("%w: multipoint bit set", ErrPacket)
	case b[1]&flagAuth != 0:
		return Packet{}, fmt.Errorf("%w: authentication is not supported", ErrPacket)
	case p.MyDisc == 0:
		return Packet{}, fmt.Errorf("%w: My Discriminator 0", ErrPacket)
	case p.YourDisc == 0 && p.State != Down && p.State != AdminDown:
		return Packet{}, fmt.Errorf("%w: Your Discriminator 0 in state %s", ErrPacket, p.State)
	}
	return p, nil
}
