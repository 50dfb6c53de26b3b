package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Proc is a child process started by the harness (usually under `ip netns exec`,
// which execs the command, so the PID is the command's own).
type Proc struct {
	Name    string
	Cmd     *exec.Cmd
	LogPath string // where stdout and stderr go (may also be the program's own --log)

	done     chan struct{}
	mu       sync.Mutex
	waitErr  error
	exitCode int
}

// StartProc starts args as a child process with stdout and stderr appended to
// logPath. The process is SIGKILLed in t.Cleanup if still running, and gets
// SIGKILL if the test process dies (Pdeathsig).
func StartProc(t testing.TB, name, logPath string, env []string, args ...string) (*Proc, error) {
	t.Helper()
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout = f
	cmd.Stderr = f
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, Cmd: cmd, LogPath: logPath, done: make(chan struct{}), exitCode: -1}
	go func() {
		err := cmd.Wait()
		f.Close()
		p.mu.Lock()
		p.waitErr = err
		p.exitCode = cmd.ProcessState.ExitCode()
		p.mu.Unlock()
		close(p.done)
	}()
	t.Cleanup(func() { p.Kill() })
	return p, nil
}

// PID returns the process id.
func (p *Proc) PID() int { return p.Cmd.Process.Pid }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Done is closed when the process exits.
func (p *Proc) Done() <-chan struct{} { return p.done }

// ExitCode is the exit code (-1 if still running or killed by a signal).
func (p *Proc) ExitCode() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exitCode
}

// ExitState describes how the process ended ("running" if it has not).
func (p *Proc) ExitState() string {
	if !p.Exited() {
		return "running"
	}
	return p.Cmd.ProcessState.String()
}

// Wait waits up to timeout for the process to exit and reports whether it did.
func (p *Proc) Wait(timeout time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// Signal sends sig to the process (no-op once it exited).
func (p *Proc) Signal(sig syscall.Signal) {
	if !p.Exited() {
		_ = syscall.Kill(p.PID(), sig)
	}
}

// Stop sends sig, waits up to timeout, then SIGKILLs. It reports whether the
// process exited by itself within timeout.
func (p *Proc) Stop(sig syscall.Signal, timeout time.Duration) bool {
	p.Signal(sig)
	if p.Wait(timeout) {
		return true
	}
	p.Kill()
	return false
}

// Kill SIGKILLs the process (by PID) and reaps it.
func (p *Proc) Kill() {
	if p.Exited() {
		return
	}
	_ = syscall.Kill(p.PID(), syscall.SIGKILL)
	p.Wait(5 * time.Second)
}

// ReadLog returns the content of a log file ("" if unreadable).
func ReadLog(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}

// Tail returns the last n lines of s.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// FindLine returns the first line of text containing every one of subs
// (case-insensitive), and whether there is one.
func FindLine(text string, subs ...string) (string, bool) {
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		l := strings.ToLower(sc.Text())
		ok := true
		for _, s := range subs {
			if !strings.Contains(l, strings.ToLower(s)) {
				ok = false
				break
			}
		}
		if ok {
			return sc.Text(), true
		}
	}
	return "", false
}

// WaitFor polls cond every interval until it returns true or timeout passes.
func WaitFor(timeout, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
}

// WaitLogLine waits up to timeout for a line of the text returned by read to
// contain all of subs (case-insensitive); it returns the line.
func WaitLogLine(read func() string, timeout time.Duration, subs ...string) (string, bool) {
	var line string
	ok := WaitFor(timeout, 100*time.Millisecond, func() bool {
		var found bool
		line, found = FindLine(read(), subs...)
		return found
	})
	return line, ok
}

// Run runs a short command with a timeout and returns its combined output.
func Run(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = errors.Join(err, fmt.Errorf("timed out after %v", timeout))
	}
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
