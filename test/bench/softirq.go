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
// receiving as well as its own work. softirqSampler measures the part by
// sampling the process's threads with perf (cpu-clock, kernel call
// chains): the share of samples inside a softirq. Sampling costs the
// process only while it runs, unlike tracing each softirq, which at 5,000
// peers added a third to faild's figure.
type softirqSampler struct {
	file string
	done chan error
}

// sampleSoftirqs starts sampling pid's threads for d.
func sampleSoftirqs(pid int, d time.Duration, dir string) *softirqSampler {
	s := &softirqSampler{file: filepath.Join(dir, fmt.Sprintf("softirq-%d.data", pid)), done: make(chan error, 1)}
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

// own waits for the sampling to end and takes the share of the samples
// inside a softirq out of raw, the process's whole CPU share over the same
// window. It returns the own share and the table's cell for the softirq
// part; if perf failed, the cell says why and the own share is raw.
func (s *softirqSampler) own(raw float64) (float64, string) {
	in, all, err := s.fraction()
	if err != nil {
		return raw, fmt.Sprintf("not measured (%v): own CPU is the whole schedstat", err)
	}
	return raw * (1 - in), fmt.Sprintf("%s (%.0f%% of %d samples)", pct(raw*in), 100*in, all)
}

// fraction waits for the sampling to end and returns the share of the
// samples taken inside a softirq, and how many samples there were.
func (s *softirqSampler) fraction() (float64, int, error) {
	defer os.Remove(s.file)
	if err := <-s.done; err != nil {
		return 0, 0, err
	}
	out, err := exec.Command("perf", "script", "-i", s.file, "-F", "ip,sym").Output()
	if err != nil {
		return 0, 0, fmt.Errorf("perf script: %w", err)
	}
	in, all := softirqSamples(out)
	if all == 0 {
		return 0, 0, fmt.Errorf("perf took no samples")
	}
	return float64(in) / float64(all), all, nil
}

// softirqSamples counts perf script's samples (call chains, one frame a
// line, a blank line after each) and those with a softirq in the chain.
func softirqSamples(script []byte) (in, all int) {
	inChain, inSoftirq := false, false
	sc := bufio.NewScanner(bytes.NewReader(script))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	end := func() {
		if inChain {
			all++
			if inSoftirq {
				in++
			}
		}
		inChain, inSoftirq = false, false
	}
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			end()
			continue
		}
		inChain = true
		// handle_softirqs since Linux 6.10, __do_softirq before.
		if strings.HasSuffix(line, " handle_softirqs") || strings.HasSuffix(line, " __do_softirq") {
			inSoftirq = true
		}
	}
	end()
	return in, all
}
