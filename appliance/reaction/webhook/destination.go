package webhook

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
)

// AllowPrivateFlag is the server flag that lifts the destination checks; the
// error messages name it so that an operator knows what to do.
const AllowPrivateFlag = "--webhook-allow-private"

// RefusedError is a connection the Sender refused to open because the
// address it was about to dial is not a public one. It is checked on the IP
// actually dialed, after DNS, so neither a name that resolves to 127.0.0.1
// nor DNS rebinding gets past it.
type RefusedError struct {
	IP     netip.Addr
	Reason string // e.g. "loopback address"
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("refused destination %s: %s (start with %s to allow)", e.IP, e.Reason, AllowPrivateFlag)
}

// Ranges classify does not get from netip's own predicates.
var (
	cgnat     = netip.MustParsePrefix("100.64.0.0/10") // RFC 6598 shared address space
	thisNet   = netip.MustParsePrefix("0.0.0.0/8")     // RFC 1122 "this network"; Linux dials 0.0.0.0 as localhost
	siteLocal = netip.MustParsePrefix("fec0::/10")     // deprecated IPv6 site-local, still routed privately
	broadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})
)

// classify says why ip is not a public unicast destination, or "" when it is.
func classify(ip netip.Addr) string {
	ip = ip.Unmap() // ::ffff:127.0.0.1 is 127.0.0.1
	switch {
	case ip.IsUnspecified() || thisNet.Contains(ip):
		return "unspecified address"
	case ip.IsLoopback():
		return "loopback address"
	case ip.IsPrivate() || siteLocal.Contains(ip):
		return "private address"
	case ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast():
		return "link-local address"
	case cgnat.Contains(ip):
		return "shared (CGNAT) address"
	case ip.IsMulticast() || ip == broadcast:
		return "multicast address"
	}
	return ""
}

// refuseNonPublic is a net.Dialer Control func: it runs after name
// resolution with the "ip:port" about to be connected.
func refuseNonPublic(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		// Fail closed: a dial the guard cannot read is not allowed.
		return fmt.Errorf("refused destination %s: not an IP address (start with %s to allow)", address, AllowPrivateFlag)
	}
	if reason := classify(ap.Addr()); reason != "" {
		return &RefusedError{IP: ap.Addr().Unmap().WithZone(""), Reason: reason}
	}
	return nil
}

// CheckURL validates a webhook URL when it is saved: absolute http or https,
// with a host and without user:password. Unless allowPrivate, a host that is
// "localhost" or a literal IP in a loopback, private, link-local, CGNAT,
// unspecified or multicast range is refused too. Host names are not resolved
// here (they may resolve differently at delivery time); the Sender checks
// the address it connects to.
func CheckURL(raw string, allowPrivate bool) error {
	if raw == "" {
		return errors.New("URL is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid URL: %w", err)
	}
	if err := checkSyntax(u); err != nil {
		return err
	}
	if allowPrivate {
		return nil
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	reason := ""
	if host == "localhost" || strings.HasSuffix(host, ".localhost") { // RFC 6761: always loopback
		reason = "loopback address"
	} else if ip, err := netip.ParseAddr(host); err == nil {
		reason = classify(ip)
	}
	if reason != "" {
		return fmt.Errorf("URL host %s is %s %s; start the server with %s to allow it", u.Hostname(), article(reason), reason, AllowPrivateFlag)
	}
	return nil
}

// checkSyntax is what both CheckURL and Send require of a URL.
func checkSyntax(u *url.URL) error {
	switch {
	case u.Scheme == "":
		return errors.New("URL must be absolute, starting with http:// or https://")
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("URL scheme must be http or https, not %q", u.Scheme)
	case u.User != nil:
		// It would travel as Basic auth and show wherever the URL is shown.
		return errors.New("URL must not contain a user name or password; put credentials in a header")
	case u.Hostname() == "":
		return errors.New("URL has no host")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("URL port %s is out of range", p)
		}
	}
	return nil
}

func article(s string) string {
	if strings.IndexByte("aeiou", s[0]) >= 0 {
		return "an"
	}
	return "a"
}
