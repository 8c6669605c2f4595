// Package options turns faild's command line and config file into a
// validated daemon.Config: the flags, the file under them, one check of
// every value that names its flag (and its file and line), and which
// options a reload cannot apply.
package options

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jessevdk/go-flags"

	"github.com/faild/faild/faild/conffile"
	"github.com/faild/faild/faild/daemon"
	"github.com/faild/faild/proto"
	"github.com/faild/faild/routes"
)

// Options is the command line; go-flags fills it, Validate checks it once.
type Options struct {
	Requestor  bool          `short:"r" long:"requestor" description:"Also be a requestor: send an INQ on every LAN each interval (without it, only answer INQs and judge paths by the INQs heard)"`
	Interval   seconds       `short:"t" long:"interval" value-name:"SECS" default:"1" description:"Interval between INQs in seconds; decimals allowed (0.05), at least 0.01"`
	Misses     int           `short:"f" long:"misses" value-name:"N" default:"3" description:"Intervals without an ACK or INQ before a path to a peer is invalid and its traffic moves to another LAN"`
	Successes  int           `short:"s" long:"successes" value-name:"N" default:"3" description:"Consecutive good intervals before an invalid path is valid again and its traffic switches back"`
	Port       int           `short:"p" long:"port" value-name:"PORT" default:"4117" description:"UDP port for INQs and ACKs, the same on every node"`
	LogFile    string        `short:"l" long:"log-file" value-name:"PATH" description:"Append the event log to PATH (default: standard error)"`
	Interfaces []string      `short:"i" long:"interface" value-name:"IFACE" description:"A LAN interface; repeat in priority order (LAN A first). Default: every interface that is up, not loopback, and has an IPv4 broadcast address or a global or unique-local IPv6 address, in index order"`
	NodeID     string        `long:"node-id" value-name:"ID" description:"This node's identity in dotted-quad form, unique in the cluster (default: its IPv4 address on LAN A, or on an IPv6-only LAN A a 32-bit hash of its IPv6 address there)"`
	Peers      []string      `long:"peer" value-name:"ADDR" description:"A peer's address on one LAN, IPv4 or IPv6; repeat for every peer on every LAN. INQs then go by unicast to the listed peers on each LAN's subnet instead of to the broadcast address or multicast group, for networks that drop those"`
	Version    bool          `long:"version" description:"Print the version and exit"`
	KeyFile    string        `long:"key-file" value-name:"FILE" description:"Authenticate every packet with HMAC-SHA256: FILE holds the current key and optionally the next, one a line, at least 16 bytes each; others must not be able to read or write it; a change takes a restart"`
	MaxPeers   int           `long:"max-peers" value-name:"N" default:"256" description:"Most peers tracked; packets from further nodes are ignored (and logged once) until a silent peer is forgotten"`
	DampWindow time.Duration `long:"damp-window" value-name:"DURATION" default:"30s" description:"Anti-flap damping: each failover of a path within DURATION of its previous one doubles the good intervals (-s) it needs to switch back; one doubling is undone per quiet DURATION; 0 turns damping off"`
	DampMax    int           `long:"damp-max" value-name:"N" default:"16" description:"Damping never makes a switchback need more than N times -s good intervals"`
	MaxLoss    percent       `long:"max-loss" value-name:"PCT" description:"Fail a path over when its loss over the loss window exceeds PCT percent (1 to 99); it switches back once a full window loses under PCT/2 and -s good intervals have passed (default: off)"`
	LossWindow int           `long:"loss-window" value-name:"N" description:"The loss window: the last N of each stream's expected packets, about N intervals (default: 300, or 3000/PCT with --max-loss where longer)"`
	MaxRTT     time.Duration `long:"max-rtt" value-name:"DURATION" description:"Fail a path over when its median round trip over the latest 128 exceeds DURATION, until the median is under half of it; needs -r (default: off)"`

	// src is where the config file set each option, so that an error can
	// name its line; nil without -c.
	src *conffile.Lines

	Ops Ops `group:"Operation Options"`
}

// seconds is a duration given on the command line in decimal seconds, as
// the original faild took -t.
type seconds time.Duration

// UnmarshalFlag implements flags.Unmarshaler.
func (s *seconds) UnmarshalFlag(v string) error {
	// A *flags.Error is passed through as it is, so the message names the
	// flag in the same words as validate does.
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return &flags.Error{Type: flags.ErrMarshal, Message: fmt.Sprintf("invalid -t/--interval %q: not a number of seconds", v)}
	}
	if f < 0 || f > 3600 {
		return &flags.Error{Type: flags.ErrMarshal, Message: fmt.Sprintf("invalid -t/--interval %s: must be 0.01 to 3600 seconds", v)}
	}
	*s = seconds(time.Duration(math.Round(f*1e6)) * time.Microsecond)
	return nil
}

// MarshalFlag implements flags.Marshaler, for the default shown in --help.
func (s seconds) MarshalFlag() (string, error) {
	return strconv.FormatFloat(time.Duration(s).Seconds(), 'f', -1, 64), nil
}

// percent is a percentage given on the command line, and whether it was
// given at all: --max-loss is off unless given, and 0 given is an error.
type percent struct {
	v   float64
	set bool
}

// UnmarshalFlag implements flags.Unmarshaler.
func (p *percent) UnmarshalFlag(v string) error {
	f, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return &flags.Error{Type: flags.ErrMarshal, Message: fmt.Sprintf("invalid --max-loss %q: not a percentage", v)}
	}
	*p = percent{v: f, set: true}
	return nil
}

// MarshalFlag implements flags.Marshaler: nothing when not given.
func (p percent) MarshalFlag() (string, error) {
	if !p.set {
		return "", nil
	}
	return strconv.FormatFloat(p.v, 'f', -1, 64), nil
}

// Validate checks every option once, after flags and config file are
// merged and before anything is touched, and returns the daemon's
// configuration they make. A bad value that came from the config file is
// named with its file and line.
func (o *Options) Validate() (daemon.Config, error) {
	cfg, err := o.check()
	if err != nil {
		return cfg, o.src.Place(err)
	}
	return cfg, nil
}

func (o *Options) check() (daemon.Config, error) {
	cfg := daemon.Config{Requestor: o.Requestor, Interval: time.Duration(o.Interval),
		Misses: o.Misses, Successes: o.Successes, Port: o.Port, Interfaces: o.Interfaces,
		MaxPeers: o.MaxPeers, DampWindow: o.DampWindow, DampMax: o.DampMax}
	if err := o.Ops.validate(&cfg); err != nil {
		return cfg, err
	}
	switch {
	case time.Duration(o.Interval) < routes.MinInterval:
		return cfg, conffile.Bad("interval", "invalid -t/--interval %s: below the minimum of %v", mustMarshal(o.Interval), routes.MinInterval)
	case o.Misses < 1 || o.Misses > 1000:
		return cfg, conffile.Bad("misses", "invalid -f/--misses %d: must be 1 to 1000", o.Misses)
	case o.Successes < 1 || o.Successes > 1000:
		return cfg, conffile.Bad("successes", "invalid -s/--successes %d: must be 1 to 1000", o.Successes)
	case o.Port < 1 || o.Port > 65535:
		return cfg, conffile.Bad("port", "invalid -p/--port %d: must be 1 to 65535", o.Port)
	case len(o.Interfaces) > proto.MaxLANs:
		return cfg, conffile.BadAt("interface", proto.MaxLANs, -1, "invalid -i/--interface: %d interfaces, at most %d", len(o.Interfaces), proto.MaxLANs)
	case len(o.Interfaces) == 1:
		return cfg, conffile.BadAt("interface", 0, -1, "invalid -i/--interface %s: one LAN; name at least two, LAN A first", o.Interfaces[0])
	}
	seen := map[string]int{}
	for i, name := range o.Interfaces {
		if name == "" || len(name) > 15 || strings.ContainsAny(name, "/ \t") {
			return cfg, conffile.BadAt("interface", i, -1, "invalid -i/--interface %q: not an interface name", name)
		}
		if first, ok := seen[name]; ok {
			return cfg, conffile.BadAt("interface", i, first, "invalid -i/--interface %s: given twice", name)
		}
		seen[name] = i
	}
	if o.MaxPeers < 1 || o.MaxPeers > 65536 {
		return cfg, conffile.Bad("max-peers", "invalid --max-peers %d: must be 1 to 65536", o.MaxPeers)
	}
	if o.DampWindow < 0 || o.DampWindow > 24*time.Hour {
		return cfg, conffile.Bad("damp-window", "invalid --damp-window %v: must be 0 (off) to 24h", o.DampWindow)
	}
	if o.DampMax < 1 || o.DampMax > 1024 {
		return cfg, conffile.Bad("damp-max", "invalid --damp-max %d: must be 1 to 1024", o.DampMax)
	}
	if err := o.checkQuality(&cfg); err != nil {
		return cfg, err
	}
	if o.KeyFile != "" {
		keys, err := proto.ReadKeyFile(o.KeyFile)
		if err != nil {
			return cfg, conffile.Bad("key-file", "invalid --key-file %s: %w", o.KeyFile, err)
		}
		cfg.Keys = keys
	}
	peers, err := parsePeers(o.Peers)
	if err != nil {
		return cfg, err
	}
	cfg.Peers = peers
	if o.NodeID != "" {
		a, err := netip.ParseAddr(o.NodeID)
		if err != nil || !a.Is4() || a.IsUnspecified() {
			return cfg, conffile.Bad("node-id", "invalid --node-id %q: want a dotted quad such as 192.0.2.1", o.NodeID)
		}
		b := a.As4()
		cfg.NodeID = binary.BigEndian.Uint32(b[:])
	}
	return cfg, nil
}

// checkQuality checks --max-loss, --loss-window and --max-rtt into cfg.
func (o *Options) checkQuality(cfg *daemon.Config) error {
	if o.MaxLoss.set {
		if o.MaxLoss.v < 1 || o.MaxLoss.v > 99 {
			return conffile.Bad("max-loss", "invalid --max-loss %s: must be 1 to 99 (percent); leave it out to judge no loss", mustMarshal(o.MaxLoss))
		}
		cfg.MaxLoss = o.MaxLoss.v / 100
	}
	switch least := routes.MinWindow(cfg.MaxLoss); {
	case o.LossWindow < 0 || o.LossWindow > routes.MaxLossWindow:
		return conffile.Bad("loss-window", "invalid --loss-window %d: must be 1 to %d intervals", o.LossWindow, routes.MaxLossWindow)
	case o.LossWindow > 0 && o.LossWindow < least:
		return conffile.Bad("loss-window", "invalid --loss-window %d: too short to measure --max-loss %s%% (a loss at that rate needs at least %d intervals)",
			o.LossWindow, mustMarshal(o.MaxLoss), least)
	}
	cfg.LossWindow = o.LossWindow
	if o.MaxRTT != 0 {
		// An ACK counts while it answers one of the latest 8 INQs (see
		// proto.Requestor): a round trip of 7 intervals is the longest
		// that is surely measured, not taken for loss.
		longest := 7 * time.Duration(o.Interval)
		switch {
		case o.MaxRTT < time.Millisecond:
			return conffile.Bad("max-rtt", "invalid --max-rtt %v: must be at least 1ms", o.MaxRTT)
		case !o.Requestor:
			return conffile.Bad("max-rtt", "invalid --max-rtt %v: needs -r/--requestor (only a requestor measures round trips)", o.MaxRTT)
		case o.MaxRTT > longest:
			return conffile.Bad("max-rtt", "invalid --max-rtt %v: at most 7 intervals (%v at -t %s); a longer round trip counts as loss",
				o.MaxRTT, longest, mustMarshal(o.Interval))
		}
		cfg.MaxRTT = o.MaxRTT
	}
	return nil
}

// parsePeers checks every --peer: a unicast address, given once. A
// link-local IPv6 address does not do: faild matches peers to LANs by
// subnet, and fe80::/64 is on every LAN.
func parsePeers(args []string) ([]netip.Addr, error) {
	var peers []netip.Addr
	for i, s := range args {
		a, err := netip.ParseAddr(s)
		switch {
		case err != nil || a.Zone() != "":
			return nil, conffile.BadAt("peer", i, -1, "invalid --peer %q: want an IPv4 or IPv6 address such as 192.0.2.2 or 2001:db8:a::2", s)
		case a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
			return nil, conffile.BadAt("peer", i, -1, "invalid --peer %s: not a unicast address of a peer", s)
		case a.IsLinkLocalUnicast():
			return nil, conffile.BadAt("peer", i, -1, "invalid --peer %s: link-local; give the peer's global or unique-local address", s)
		}
		a = a.Unmap()
		if first := slices.Index(peers, a); first >= 0 {
			return nil, conffile.BadAt("peer", i, first, "invalid --peer %s: given twice", s)
		}
		peers = append(peers, a)
	}
	return peers, nil
}

func mustMarshal(s flags.Marshaler) string {
	v, _ := s.MarshalFlag()
	return v
}
