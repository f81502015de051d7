package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/internal/livetest"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds zoomprobe once for the tests that run it as a process.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "zoomprobe-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "zoomprobe")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// daemonProcess is a `zoomprobe run` process whose log lines are read as
// they come.
type daemonProcess struct {
	cmd   *exec.Cmd
	lines chan string
	mu    sync.Mutex
	log   []string
	done  chan error
}

func startProcess(t *testing.T, stdout io.Writer, args ...string) *daemonProcess {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Stdout = stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &daemonProcess{cmd: cmd, lines: make(chan string, 1024), done: make(chan error, 1)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.log = append(p.log, sc.Text())
			p.mu.Unlock()
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
		close(p.lines)
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
	})
	return p
}

// waitLine returns the first log line containing want; it fails if the
// process exits first.
func (p *daemonProcess) waitLine(t *testing.T, want string) string {
	t.Helper()
	guard := time.After(60 * time.Second)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("zoomprobe exited before logging %q: %v\n%s", want, <-p.done, p.logText())
			}
			if strings.Contains(l, want) {
				return l
			}
		case <-guard:
			t.Fatalf("zoomprobe never logged %q\n%s", want, p.logText())
		}
	}
}

func (p *daemonProcess) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.log, "\n")
}

// stop sends SIGTERM and wants a clean exit.
func (p *daemonProcess) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	for range p.lines {
	}
	if err := <-p.done; err != nil {
		t.Fatalf("zoomprobe exited with %v, want 0\n%s", err, p.logText())
	}
}

var listenAddr = regexp.MustCompile(`msg="Listening on" address=(\S+)`)

func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "zoomprobe.yml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// SIGHUP from the first moment the daemon logs (`systemctl reload` racing
// its start) reloads, never kills: SIGHUP is sent every millisecond from the
// first log line until the web server listens, then the daemon must still
// answer and exit cleanly on SIGTERM.
func TestEarlySIGHUPDoesNotKill(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to capture on lo (AF_PACKET); CI runs it as root")
	}
	cfg := writeConfig(t, "capture:\n  interfaces: [lo]\n  workers: 1\nprobes:\n  enabled: false\nevent_log:\n  path: \"\"\n")
	p := startProcess(t, io.Discard, "--config.file", cfg, "run", "--web.listen-address", "127.0.0.1:0")
	p.waitLine(t, "starting zoomprobe")
	stopHUP := make(chan struct{})
	hupDone := make(chan int)
	go func() {
		sent := 0
		for {
			select {
			case <-stopHUP:
				hupDone <- sent
				return
			default:
			}
			if p.cmd.Process.Signal(syscall.SIGHUP) == nil {
				sent++
			}
			time.Sleep(time.Millisecond)
		}
	}()
	line := p.waitLine(t, "Listening on")
	close(stopHUP)
	sent := <-hupDone
	m := listenAddr.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no address in %q", line)
	}
	// The SIGHUPs were taken as reloads: logged before or after the listener,
	// so look at every line so far, not only the ones still to come.
	guard := time.After(60 * time.Second)
	for !strings.Contains(p.logText(), "configuration reloaded") {
		select {
		case _, ok := <-p.lines:
			if !ok {
				t.Fatalf("zoomprobe exited without a reload: %v\n%s", <-p.done, p.logText())
			}
		case <-guard:
			t.Fatalf("zoomprobe never logged a reload\n%s", p.logText())
		}
	}
	resp, err := http.Get("http://" + m[1] + "/-/ready")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/-/ready = %d after %d SIGHUPs", resp.StatusCode, sent)
	}
	p.stop(t)
}

// With the event log on standard output piped into a reader that goes away
// (`| head -1`), the next finding's write fails: the daemon logs it and
// keeps running, instead of dying of SIGPIPE.
func TestSIGPIPEOnStdoutDoesNotKill(t *testing.T) {
	link := livetest.NewLink(t)
	cfg := writeConfig(t, "capture:\n  interfaces: ["+link.Capture+"]\n  workers: 1\nprobes:\n  enabled: false\nevent_log:\n  path: \"-\"\n")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p := startProcess(t, w, "--config.file", cfg, "run", "--web.listen-address", "127.0.0.1:0")
	w.Close()
	addr := listenAddr.FindStringSubmatch(p.waitLine(t, "Listening on"))[1]
	waitReady(t, addr)

	// One finding is read, then the reader goes away, like head -1.
	link.Send(t, livetest.SinkholeAnswer("first.zoom.us", 1))
	first, err := bufio.NewReader(r).ReadString('\n')
	if err != nil || !strings.Contains(first, "first.zoom.us") {
		t.Fatalf("first finding: %q, %v", first, err)
	}
	r.Close()
	for i := range 3 {
		link.Send(t, livetest.SinkholeAnswer(fmt.Sprintf("after-%d.zoom.us", i), uint16(i)))
	}
	p.waitLine(t, "broken pipe")
	resp, err := http.Get("http://" + addr + "/-/healthy")
	if err != nil {
		t.Fatalf("daemon gone after a write to a closed pipe: %v", err)
	}
	resp.Body.Close()
	p.stop(t)
}

func waitReady(t *testing.T, addr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		resp, err := http.Get("http://" + addr + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("never ready")
}
