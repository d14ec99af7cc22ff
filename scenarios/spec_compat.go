package scenarios

import "github.com/netbed/netbed/scenarios/spec"

// The scenario file's types and reader live in package spec, which imports
// neither the controller nor any datapath model; these names keep the code
// that says scenarios.Scenario (and the branches in flight) compiling.
type (
	Scenario            = spec.Scenario
	Generation          = spec.Generation
	ControlPlane        = spec.ControlPlane
	BGPSettings         = spec.BGPSettings
	ControllerSpec      = spec.ControllerSpec
	TopologySpec        = spec.TopologySpec
	Network             = spec.Network
	Site                = spec.Site
	Step                = spec.Step
	Placement           = spec.Placement
	Spawn               = spec.Spawn
	Churn               = spec.Churn
	Drift               = spec.Drift
	Target              = spec.Target
	Traffic             = spec.Traffic
	Policy              = spec.Policy
	Expect              = spec.Expect
	Pair                = spec.Pair
	BGPSessionsExpect   = spec.BGPSessionsExpect
	BGPRouteExpect      = spec.BGPRouteExpect
	GenOptions          = spec.GenOptions
	VPCOptions          = spec.VPCOptions
	FloatingIP          = spec.FloatingIP
	SecurityGroupChange = spec.SecurityGroupChange
	IDRange             = spec.IDRange
	Error               = spec.Error
)

// Constants of package spec.
const (
	GenVLAN       = spec.GenVLAN
	GenVLANStock  = spec.GenVLANStock
	GenEVPN       = spec.GenEVPN
	GenEBPF       = spec.GenEBPF
	GenEBPFDirect = spec.GenEBPFDirect
	GenVPC        = spec.GenVPC
	GenHybrid     = spec.GenHybrid

	ControlPlaneShared = spec.ControlPlaneShared
	ControlPlaneBGP    = spec.ControlPlaneBGP
	NoHoldTimer        = spec.NoHoldTimer
	FailPower          = spec.FailPower
	FailSilent         = spec.FailSilent
	DesignIBGP         = spec.DesignIBGP
	DesignEBGP         = spec.DesignEBGP
	FamilyIPv4         = spec.FamilyIPv4
	FamilyIPv6         = spec.FamilyIPv6
	FamilyDual         = spec.FamilyDual
	PlaceSpread        = spec.PlaceSpread
	PlacePacked        = spec.PlacePacked
	StoreBolt          = spec.StoreBolt
	StoreEtcd          = spec.StoreEtcd
	EtcdMembers        = spec.EtcdMembers
	CNCLeader          = spec.CNCLeader
	MaxVLAN            = spec.MaxVLAN
	MaxVNI             = spec.MaxVNI
)

// Variables of package spec (the same values).
var (
	ErrInvalid        = spec.ErrInvalid
	Generations       = spec.Generations
	DefaultGenOptions = spec.DefaultGenOptions
)

// Parse reads a scenario from src; file names it in errors and anchors
// relative topology paths (spec.Parse).
func Parse(file string, src []byte) (*Scenario, error) { return spec.Parse(file, src) }

// Load reads and parses a scenario file (spec.Load).
func Load(path string) (*Scenario, error) { return spec.Load(path) }
