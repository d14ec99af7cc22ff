package cloud

import (
	"errors"
	"fmt"
)

// Code is one of the provider's error codes (EC2's, spelled as EC2 spells
// them). A Code is an error, so errors.Is(err, cloud.AttachmentLimitExceeded)
// tells a caller what went wrong whatever the message says.
type Code string

// Error implements error.
func (c Code) Error() string { return string(c) }

// The error codes the model returns. Sources: "Error codes for the Amazon
// EC2 API" (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html).
const (
	// RequestLimitExceeded: the action's throttling bucket is empty.
	RequestLimitExceeded Code = "RequestLimitExceeded"
	// AttachmentLimitExceeded: the instance has its instance type's
	// largest number of ENIs attached.
	AttachmentLimitExceeded Code = "AttachmentLimitExceeded"
	// PrivateIpAddressLimitExceeded: the ENI would have more addresses
	// than its instance type allows per ENI.
	PrivateIpAddressLimitExceeded Code = "PrivateIpAddressLimitExceeded"
	// InsufficientFreeAddressesInSubnet: the subnet has no free address.
	InsufficientFreeAddressesInSubnet Code = "InsufficientFreeAddressesInSubnet"
	// AddressLimitExceeded: the account holds its largest number of
	// Elastic IPs.
	AddressLimitExceeded Code = "AddressLimitExceeded"
	// InvalidParameterValue: a parameter is wrong (an address outside the
	// ENI's subnet, a count below 1, an unknown instance type).
	InvalidParameterValue Code = "InvalidParameterValue"
	// InvalidParameterCombination: both or neither of two exclusive
	// parameters (a count and addresses).
	InvalidParameterCombination Code = "InvalidParameterCombination"
	// InvalidIPAddressInUse: a specific address is held by another ENI
	// and reassignment was not allowed (EC2: InvalidIPAddress.InUse).
	InvalidIPAddressInUse Code = "InvalidIPAddress.InUse"
	// InvalidNetworkInterfaceInUse: the ENI is attached and cannot be
	// deleted or attached elsewhere (EC2: InvalidNetworkInterface.InUse).
	InvalidNetworkInterfaceInUse Code = "InvalidNetworkInterface.InUse"
	// OperationNotPermitted: detaching an instance's primary ENI,
	// unassigning an ENI's primary address.
	OperationNotPermitted Code = "OperationNotPermitted"
	// ResourceAlreadyAssociated: the Elastic IP is associated and
	// reassociation was not allowed (EC2: Resource.AlreadyAssociated).
	ResourceAlreadyAssociated Code = "Resource.AlreadyAssociated"
	// InvalidSubnetConflict: the CIDR overlaps a subnet's (EC2:
	// InvalidSubnet.Conflict).
	InvalidSubnetConflict Code = "InvalidSubnet.Conflict"

	InvalidNetworkInterfaceIDNotFound Code = "InvalidNetworkInterfaceID.NotFound"
	InvalidInstanceIDNotFound         Code = "InvalidInstanceID.NotFound"
	InvalidSubnetIDNotFound           Code = "InvalidSubnetID.NotFound"
	InvalidAttachmentIDNotFound       Code = "InvalidAttachmentID.NotFound"
	InvalidAllocationIDNotFound       Code = "InvalidAllocationID.NotFound"
	InvalidAssociationIDNotFound      Code = "InvalidAssociationID.NotFound"
)

// Error is a failed call: the action, the provider's code and a message
// that names the instance, ENI, subnet or address concerned.
type Error struct {
	Action  string // "AttachNetworkInterface"
	Code    Code
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s: %s", e.Action, e.Code, e.Message)
}

// Is matches the error's Code, so errors.Is(err, AttachmentLimitExceeded).
func (e *Error) Is(target error) bool {
	c, ok := target.(Code)
	return ok && c == e.Code
}

// CodeOf returns err's provider code, or "" if err is not the cloud's.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// Throttled reports whether err is the provider's throttling: a caller
// backs off and retries.
func Throttled(err error) bool { return errors.Is(err, RequestLimitExceeded) }

func fail(action string, code Code, format string, args ...any) error {
	return &Error{Action: action, Code: code, Message: fmt.Sprintf(format, args...)}
}
