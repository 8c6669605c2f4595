package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// A veth hands a frame to the other end at once: the switch and the
// receiving node's whole stack run in a softirq on the sending thread,
// inside its sendmmsg. A kernel built with IRQ time accounting
// (CONFIG_IRQ_TIME_ACCOUNTING) keeps softirq time out of the interrupted
// task's run time; this machine's kernel has none and adds it to the
// sender's schedstat, so a process's figure there holds its peers'
// receiving as well as its own work. perfSampler measures the part by
// sampling the process's threads with perf (cpu-clock, kernel call
// chains): the share of samples inside a softirq; the same samples tell
// the kernel's part of the rest from user space. Sampling costs the
// process only while it runs, unlike tracing each softirq, which at 5,000
// peers added a third to faild's figure.
type perfSampler struct {
	file string
	done chan error
}

// samplePerf starts sampling pid's threads for d.
func samplePerf(pid int, d time.Duration, dir string) *perfSampler {
	s := &perfSampler{file: filepath.Join(dir, fmt.Sprintf("perf-%d.data", pid)), done: make(chan error, 1)}
	go func() {
		cmd := exec.Command("perf", "record", "-q", "-F", "1999", "-g", "-p", strconv.Itoa(pid), "-o", s.file,
			"--", "sleep", strconv.FormatFloat(d.Seconds(), 'f', 3, 64))
		if out, err := cmd.CombinedOutput(); err != nil {
			s.done <- fmt.Errorf("perf record: %w: %s", err, bytes.TrimSpace(out))
			return
		}
		s.done <- nil
	}()
	return s
}

// split waits for the sampling to end and splits raw, the process's whole
// CPU share over the window, by the samples: the share inside a softirq
// comes out (own is the rest), and of own, the share in the kernel (system
// calls, scheduling) is kept apart from user space. If perf failed, the
// cells say why and own is raw.
func (s *perfSampler) split(raw float64) (own float64, softirq, kernel string) {
	c, err := s.counts()
	if err != nil {
		why := fmt.Sprintf("not measured (%v): own CPU is the whole schedstat", err)
		return raw, why, "not measured"
	}
	in := float64(c.softirq) / float64(c.all)
	own = raw * (1 - in)
	softirq = fmt.Sprintf("%s (%.0f%% of %d samples)", pct(raw*in), 100*in, c.all)
	kernel = "none sampled"
	if mine := c.all - c.softirq; mine > 0 {
		k := float64(c.kernel) / float64(mine)
		kernel = fmt.Sprintf("%s (%.0f%%)", pct(own*k), 100*k)
	}
	return own, softirq, kernel
}

// counts waits for the sampling to end and counts its samples.
func (s *perfSampler) counts() (sampleCounts, error) {
	defer os.Remove(s.file)
	if err := <-s.done; err != nil {
		return sampleCounts{}, err
	}
	out, err := exec.Command("perf", "script", "-i", s.file, "-F", "ip,sym").Output()
	if err != nil {
		return sampleCounts{}, fmt.Errorf("perf script: %w", err)
	}
	c := countSamples(out)
	if c.all == 0 {
		return c, fmt.Errorf("perf took no samples")
	}
	return c, nil
}

// sampleCounts is how many of perf's samples there were, how many had a
// softirq in their call chain, and how many of the rest were taken in the
// kernel.
type sampleCounts struct{ all, softirq, kernel int }

// countSamples counts perf script's samples (call chains, one frame a
// line, innermost first, a blank line after each). A sample is in the
// kernel when its innermost frame is a kernel address (the top half of
// the address space on every CPU the lab runs on).
func countSamples(script []byte) (c sampleCounts) {
	inChain, inSoftirq, inKernel := false, false, false
	sc := bufio.NewScanner(bytes.NewReader(script))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	end := func() {
		if inChain {
			c.all++
			switch {
			case inSoftirq:
				c.softirq++
			case inKernel:
				c.kernel++
			}
		}
		inChain, inSoftirq, inKernel = false, false, false
	}
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			end()
			continue
		}
		if !inChain {
			addr, _, _ := strings.Cut(line, " ")
			inKernel = len(addr) == 16 && addr[0] >= '8'
		}
		inChain = true
		// handle_softirqs since Linux 6.10, __do_softirq before.
		if strings.HasSuffix(line, " handle_softirqs") || strings.HasSuffix(line, " __do_softirq") {
			inSoftirq = true
		}
	}
	end()
	return c
}
