// microseg-nft writes microseg's nftables tables to the kernel over netlink, without nft's parser and
// evaluator (most of `nft -f`'s CPU time on a large table) and without reading interval sets back
// before an element update (what makes `nft add element` cost a set read-back).
//
// It runs in the network namespace it was started in and speaks newline-delimited JSON on stdin/stdout,
// one response line per request line:
//
//	{"id":1,"op":"replace","table":{...Table of ir.ts, each set's elements as one string (see NamedSet)...}}
//	{"id":2,"op":"elements","name":"TABLE","changes":[{"set":{"kind":..,"name":..,"v":..},"delete":"..","add":".."}]}
//	{"id":3,"op":"list","name":"TABLE"}
//	→ {"id":N,"ok":true,"cpuMs":..,...} or {"id":N,"ok":false,"error":"..."}
//
// replace and elements are one netlink batch each: the kernel applies all of it or nothing.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"runtime/debug"
	"syscall"
)

type response struct {
	ID    int     `json:"id"`
	OK    bool    `json:"ok"`
	Error string  `json:"error,omitempty"`
	CPUMs float64 `json:"cpuMs"`
	// The kernel's share of CPUMs (system time: netlink processing happens in the sending process).
	SysMs float64 `json:"sysMs"`
	// list
	Listing *Listing `json:"listing,omitempty"`
}

func cpuMs() (total, sys float64) {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e6, float64(ru.Stime.Nano()) / 1e6
}

func main() {
	// Short-lived garbage (a swap's messages): fewer collections for a little more memory.
	debug.SetGCPercent(400)
	c, err := dial()
	if err != nil {
		fmt.Fprintln(os.Stderr, "microseg-nft:", err)
		os.Exit(1)
	}
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	out := bufio.NewWriter(os.Stdout)
	for {
		line, err := in.ReadBytes('\n')
		if len(line) > 0 {
			start, startSys := cpuMs()
			resp := handle(c, line)
			end, endSys := cpuMs()
			resp.CPUMs, resp.SysMs = end-start, endSys-startSys
			b, _ := json.Marshal(resp)
			out.Write(b)
			out.WriteByte('\n')
			out.Flush()
		}
		if err != nil {
			return
		}
	}
}

func handle(c *conn, line []byte) (resp response) {
	var req Request
	if err := json.Unmarshal(line, &req); err != nil {
		return response{ID: req.ID, Error: "bad request: " + err.Error()}
	}
	resp.ID = req.ID
	fail := func(err error) response { resp.Error = err.Error(); return resp }
	switch req.Op {
	case "replace":
		if req.Table == nil {
			return fail(fmt.Errorf("replace: no table"))
		}
		b, err := replaceBatch(req.Table)
		if err != nil {
			return fail(err)
		}
		if err := c.commit(b); err != nil {
			return fail(err)
		}
	case "elements":
		b, err := elementsBatch(req.Name, req.Changes)
		if err != nil {
			return fail(err)
		}
		if err := c.commit(b); err != nil {
			return fail(err)
		}
	case "list":
		l, err := list(c, req.Name)
		if err != nil {
			return fail(err)
		}
		resp.Listing = l
	default:
		return fail(fmt.Errorf("unknown op %q (expected replace, elements or list)", req.Op))
	}
	resp.OK = true
	return resp
}
