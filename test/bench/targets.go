package main

import (
	"fmt"
	"strings"
)

// goal is one target of issue 16 and what this run measured for it; the
// sections record them as they go and the report closes with the list.
type goal struct {
	what, target, got string
	met               string // "yes", "no" or "record" (no bound)
}

var goals []goal

// aim records a figure against its target.
func aim(what, target, got string, met bool) {
	m := "no"
	if met {
		m = "yes"
	}
	goals = append(goals, goal{what, target, got, m})
}

// record notes a figure that has no bound, only a place in the list.
func record(what, got string) {
	goals = append(goals, goal{what, "recorded", got, "record"})
}

// writeGoals is the report's closing table.
func writeGoals(r *report) {
	if len(goals) == 0 {
		return
	}
	r.f("\n## Against the targets\n\nEvery figure of this run that has a target, beside it (figures from the sections above; the machine and its load are at the top, and each section gives its own load).\n\n| what | target | this run | met |\n|---|---|---|---|\n")
	for _, g := range goals {
		r.f("| %s | %s | %s | %s |\n", g.what, g.target, strings.ReplaceAll(g.got, "|", "/"), g.met)
	}
}

// pctOf formats a share of one core.
func pctOf(share float64) string { return fmt.Sprintf("%.2f%% of a core", share*100) }
