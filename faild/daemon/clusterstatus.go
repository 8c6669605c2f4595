package daemon

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/faild/faild/routes"
)

// Cluster is every LAN's matrix as this node draws it, as "faild status
// --cluster --json" prints it. The man page documents every field; add
// fields, never rename them.
type Cluster struct {
	Node      string       `json:"node"`
	Time      time.Time    `json:"time"`
	PathsDown int          `json:"paths_down"` // as in Status, for the exit status
	Diagnosis []Diagnosis  `json:"diagnosis"`
	LANs      []ClusterLAN `json:"lans"`
}

// ClusterLAN is one LAN's matrix in one address family: a row per
// observer (this node first), a column per node.
type ClusterLAN struct {
	LAN    string       `json:"lan"`
	Family string       `json:"family"`
	Nodes  []string     `json:"nodes"`
	Rows   []ClusterRow `json:"rows"`
}

// ClusterRow is what one observer hears of every node on the LAN: a cell
// per ClusterLAN.Nodes, "heard", "not-heard", "lossy", "unknown" (no path
// there, or not in its view) or "self".
type ClusterRow struct {
	Observer   string   `json:"observer"`
	AgeSeconds float64  `json:"age_seconds"` // since its view last came; 0 for this node
	Fresh      bool     `json:"fresh"`       // recent enough to count for the diagnosis
	Cells      []string `json:"cells"`
}

// Healthy reports whether every path of this node's is valid, as for
// "faild status".
func (c *Cluster) Healthy() bool { return c.PathsDown == 0 }

// cluster builds the Cluster as of now; the loop calls it.
func (d *Daemon) cluster(now time.Time) *Cluster {
	c := &Cluster{Node: routes.PeerID(d.node).String(), Time: now, PathsDown: d.summary().Down,
		Diagnosis: d.diagnoses(), LANs: []ClusterLAN{}}
	self := routes.PeerID(d.node)
	for _, f := range d.fams {
		if f == nil {
			continue
		}
		ms := d.matrices(f, now, nil)
		for lan, m := range ms {
			cl := ClusterLAN{LAN: routes.LANName(lan), Family: f.name()}
			nodes := slices.Clone(m.nodes)
			// Stale observers get a row too, with their age: the operator
			// should see whose view is missing.
			stale := map[routes.PeerID][]cellOfRow{}
			for id, r := range f.rows {
				if i, ok := m.index[id]; ok && m.obs[i] || !f.table.Has(id) {
					continue
				}
				var cells []cellOfRow
				for _, e := range r.entries {
					cells = append(cells, cellOfRow{routes.PeerID(e.Node), cellOf(e, lan)})
					if !slices.Contains(nodes, routes.PeerID(e.Node)) {
						nodes = append(nodes, routes.PeerID(e.Node))
					}
				}
				stale[id] = cells
				if !slices.Contains(nodes, id) {
					nodes = append(nodes, id)
				}
			}
			slices.Sort(nodes)
			for _, n := range nodes {
				cl.Nodes = append(cl.Nodes, n.String())
			}
			row := func(o routes.PeerID, age time.Duration, fresh bool, at func(p routes.PeerID) cell) {
				r := ClusterRow{Observer: o.String(), AgeSeconds: age.Seconds(), Fresh: fresh}
				for _, p := range nodes {
					if p == o {
						r.Cells = append(r.Cells, "self")
						continue
					}
					r.Cells = append(r.Cells, at(p).String())
				}
				cl.Rows = append(cl.Rows, r)
			}
			row(self, 0, true, func(p routes.PeerID) cell { return m.at(self, p) })
			var obs []routes.PeerID
			for i, id := range m.nodes {
				if m.obs[i] && id != self {
					obs = append(obs, id)
				}
			}
			for id := range stale {
				obs = append(obs, id)
			}
			slices.Sort(obs)
			for _, o := range obs {
				if cells, ok := stale[o]; ok {
					row(o, now.Sub(f.rows[o].at), false, func(p routes.PeerID) cell {
						for _, c := range cells {
							if c.node == p {
								return c.c
							}
						}
						return unknown
					})
					continue
				}
				row(o, m.age[m.index[o]], true, func(p routes.PeerID) cell { return m.at(o, p) })
			}
			c.LANs = append(c.LANs, cl)
		}
	}
	return c
}

type cellOfRow struct {
	node routes.PeerID
	c    cell
}

// FetchCluster reads the cluster's matrices from the daemon at path.
func FetchCluster(path string) (*Cluster, []byte, error) { return fetch[Cluster](path, "cluster") }

// WriteDiagnosis prints the diagnoses, one a line, or that there is none.
func WriteDiagnosis(w io.Writer, ds []Diagnosis) {
	if len(ds) == 0 {
		fmt.Fprintln(w, "diagnosis: none, every node hears every other")
		return
	}
	for _, d := range ds {
		fmt.Fprintf(w, "diagnosis: LAN %s %s", d.LAN, d.Fault)
		if d.Node != "" {
			fmt.Fprintf(w, " node=%s", d.Node)
		}
		if d.Peer != "" {
			fmt.Fprintf(w, " peer=%s", d.Peer)
		}
		if d.Groups != "" {
			fmt.Fprintf(w, " groups=%q", d.Groups)
		}
		fmt.Fprintf(w, ": %s\n", d.Detail)
	}
}

// cellMarks are the matrix's cells as printed: short, so that a dozen
// nodes fit a terminal.
var cellMarks = map[string]string{"heard": "+", "not-heard": "X", "lossy": "~", "unknown": "?", "self": "."}

// WriteTable prints the diagnosis and every LAN's matrix for people.
func (c *Cluster) WriteTable(w io.Writer) {
	WriteDiagnosis(w, c.Diagnosis)
	for _, l := range c.LANs {
		fmt.Fprintf(w, "\nLAN %s (%s): what each observer hears (+ heard, X not heard, ~ lossy, ? unknown)\n", l.LAN, l.Family)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "OBSERVER\tAGE\t%s\n", strings.Join(l.Nodes, "\t"))
		for _, r := range l.Rows {
			age := FormatSeconds(r.AgeSeconds)
			if !r.Fresh {
				age += " (stale)"
			}
			var marks []string
			for _, cl := range r.Cells {
				marks = append(marks, cellMarks[cl])
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Observer, age, strings.Join(marks, "\t"))
		}
		tw.Flush()
	}
}
