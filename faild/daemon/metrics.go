package daemon

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/faild/faild/routes"
)

// The Prometheus endpoint (--metrics-listen). The loop owns every figure,
// so a scrape asks it for a snapshot over the request channel, as the
// status server does, and writes that; nothing here reads daemon state.

// scrape is the loop's answer to a scrape: immutable once sent. Its
// status holds every figure, path quality included, so the metrics say
// what faild status says.
type scrape struct {
	status *Status
}

// scrapeSnapshot builds a scrape as of now; the loop calls it.
func (d *Daemon) scrapeSnapshot(now time.Time) *scrape {
	return &scrape{status: d.snapshot(now)}
}

// listenMetrics binds the metrics endpoint's socket: at start, so that an
// address in use is a start-up error.
func listenMetrics(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("failed to listen for metrics on --metrics-listen %s: %w", addr, err)
	}
	return ln, nil
}

// serveMetrics answers scrapes on ln until ctx ends, one connection at
// a time: Prometheus scrapes once every few seconds.
//
// The HTTP is written here, not taken from net/http: a scrape is one GET
// of one path, answered and closed, and net/http's server would add 1.9 MB
// to a 6.1 MB binary (measured; see faild(8)).
func serveMetrics(ctx context.Context, ln net.Listener, requests chan<- request, log *slog.Logger) error {
	metrics.ExposeMetadata(true)
	return accept(ctx, ln, "--metrics-listen "+ln.Addr().String(), func(c net.Conn) {
		if err := answerScrape(ctx, c, requests); err != nil {
			log.Debug("metrics-request", "from", c.RemoteAddr().String(), "err", err)
		}
	})
}

// maxRequest bounds an HTTP request's head; a scrape's is a few hundred
// bytes.
const maxRequest = 8 << 10

// answerScrape reads one HTTP request from c and answers it: the metrics
// for GET (or HEAD) /metrics, an error status for anything else.
func answerScrape(ctx context.Context, c net.Conn, requests chan<- request) error {
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	head, err := readHead(c)
	if err != nil {
		reply(c, "400 Bad Request", "text/plain", []byte(err.Error()+"\n"), true)
		return err
	}
	method, target, _ := strings.Cut(head, " ")
	target, _, _ = strings.Cut(target, " ")
	target, _, _ = strings.Cut(target, "?")
	switch {
	case method != "GET" && method != "HEAD":
		reply(c, "405 Method Not Allowed", "text/plain", []byte("only GET /metrics\n"), true)
		return nil
	case target != "/metrics":
		reply(c, "404 Not Found", "text/plain", []byte("faild serves /metrics only\n"), method == "GET")
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	q := request{verb: "metrics", scrape: make(chan *scrape, 1)}
	var sc *scrape
	if post(ctx, requests, q) {
		select {
		case sc = <-q.scrape:
		case <-ctx.Done():
		}
	}
	if sc == nil {
		reply(c, "503 Service Unavailable", "text/plain", []byte("faild is busy\n"), true)
		return ctx.Err()
	}
	var b bytes.Buffer
	sc.write(&b)
	return reply(c, "200 OK", "text/plain; version=0.0.4; charset=utf-8", b.Bytes(), method == "GET")
}

// readHead reads an HTTP request's head (up to the blank line) and
// returns its request line.
func readHead(c net.Conn) (string, error) {
	r := bufio.NewReaderSize(io.LimitReader(c, maxRequest), 1024)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("no request line: %w", err)
	}
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			return "", fmt.Errorf("request head cut short or past %d bytes: %w", maxRequest, err)
		}
		if l == "\r\n" || l == "\n" {
			return strings.TrimRight(line, "\r\n"), nil
		}
	}
}

// reply writes a whole HTTP response and closes the exchange.
func reply(c net.Conn, status, ctype string, body []byte, withBody bool) error {
	h := fmt.Sprintf("HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", status, ctype, len(body))
	if !withBody {
		body = nil
	}
	_, err := c.Write(append([]byte(h), body...))
	return err
}

// write renders a scrape in the Prometheus text format.
func (sc *scrape) write(w io.Writer) {
	s := metrics.NewSet()
	st := sc.status
	gauge := func(name string, v float64) { s.GetOrCreateGauge(name, nil).Set(v) }
	counter := func(name string, v uint64) { s.GetOrCreateCounter(name).Set(v) }
	for _, p := range st.Paths {
		l := fmt.Sprintf(`{peer=%q,lan=%q,addr=%q}`, p.Peer, p.LAN, p.Addr)
		up := 0.0
		if p.State == "valid" {
			up = 1
		}
		gauge("faild_path_up"+l, up)
		degraded := 0.0
		if p.Reason == routes.ReasonLoss.String() || p.Reason == routes.ReasonRTT.String() || p.Reason == routes.ReasonPeer.String() {
			degraded = 1
		}
		gauge("faild_path_degraded"+l, degraded)
		if p.Reason != "" {
			gauge(fmt.Sprintf(`faild_path_invalid_reason{peer=%q,lan=%q,addr=%q,reason=%q}`, p.Peer, p.LAN, p.Addr, p.Reason), 1)
		}
		gauge("faild_path_rtt_seconds"+l, p.RTTSeconds)
		gauge("faild_path_last_evidence_seconds"+l, p.LastEvidenceSeconds)
		if p.LossInSlots > 0 || p.LossRoundTripSlots > 0 {
			gauge("faild_path_loss_ratio"+l, p.LossWindowPercent/100)
			gauge("faild_path_loss_total_ratio"+l, p.LossTotalPercent/100)
		}
		if p.RTTSamples > 0 {
			gauge("faild_path_rtt_p50_seconds"+l, p.RTTP50Seconds)
			gauge("faild_path_rtt_p99_seconds"+l, p.RTTP99Seconds)
		}
		counter("faild_failovers_total"+l, uint64(p.Failovers))
		counter("faild_switchbacks_total"+l, uint64(p.Switchbacks))
	}
	gauge("faild_peers", float64(st.Peers))
	gauge("faild_paths", float64(len(st.Paths)))
	gauge("faild_paths_down", float64(st.PathsDown))
	for reason, n := range st.Drops {
		counter(fmt.Sprintf(`faild_drops_total{reason=%q}`, reason), n)
	}
	counter("faild_hooks_run_total", st.Hooks.Run)
	counter("faild_hooks_failed_total", st.Hooks.Failed)
	counter("faild_hooks_dropped_total", st.Hooks.Dropped)
	counter("faild_addr_refused_total", st.AddrRefused)
	counter("faild_log_lines_lost_total", st.LogLinesLost)
	gauge("faild_diagnoses", float64(len(st.Diagnosis)))
	for _, d := range st.Diagnosis {
		gauge(fmt.Sprintf(`faild_diagnosis{lan=%q,fault=%q,node=%q,peer=%q,groups=%q}`, d.LAN, d.Fault, d.Node, d.Peer, d.Groups), 1)
	}
	s.WritePrometheus(w)
}
