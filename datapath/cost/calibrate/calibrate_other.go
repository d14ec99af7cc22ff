//go:build !linux

package calibrate

import (
	"context"
	"errors"

	"github.com/netbed/netbed/datapath/cost"
)

// ErrUnsupported is returned where namespaces do not exist.
var ErrUnsupported = errors.New("calibration needs Linux network namespaces")

// Run is not supported outside Linux.
func Run(ctx context.Context, o Options) (*cost.Table, error) { return nil, ErrUnsupported }
