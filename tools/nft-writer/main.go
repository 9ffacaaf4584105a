// microseg-nft writes microseg's nftables tables to the kernel over netlink, without nft's parser and
// evaluator (most of `nft -f`'s CPU time on a large table) and without reading interval sets back
// before an element update (what makes `nft add element` cost a set read-back).
//
// It runs in the network namespace it was started in and speaks newline-delimited JSON on stdin/stdout,
// one response line per request line:
//
//	{"id":1,"op":"replace","table":{...Table of ir.ts, bigints as decimal strings...}}
//	{"id":2,"op":"elements","table":"NAME","changes":[{"set":{"kind":..,"name":..,"v":..},"delete":[..],"add":[..]}]}
//	{"id":3,"op":"list","table":"NAME"}
//	→ {"id":N,"ok":true,"cpuMs":..,...} or {"id":N,"ok":false,"error":"..."}
//
// replace and elements are one netlink batch each: the kernel applies all of it or nothing.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"syscall"
)

type response struct {
	ID    int     `json:"id"`
	OK    bool    `json:"ok"`
	Error string  `json:"error,omitempty"`
	CPUMs float64 `json:"cpuMs"`
	// list
	Listing *Listing `json:"listing,omitempty"`
}

func cpuMs() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e6
}

func main() {
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
			start := cpuMs()
			resp := handle(c, line)
			resp.CPUMs = cpuMs() - start
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
		var t Table
		if err := json.Unmarshal(req.Table, &t); err != nil {
			return fail(fmt.Errorf("bad table: %w", err))
		}
		b, err := replaceBatch(&t)
		if err != nil {
			return fail(err)
		}
		if err := c.commit(b); err != nil {
			return fail(err)
		}
	case "elements":
		var name string
		if err := json.Unmarshal(req.Table, &name); err != nil {
			return fail(fmt.Errorf("bad table name: %w", err))
		}
		b, err := elementsBatch(name, req.Changes)
		if err != nil {
			return fail(err)
		}
		if err := c.commit(b); err != nil {
			return fail(err)
		}
	case "list":
		var name string
		if err := json.Unmarshal(req.Table, &name); err != nil {
			return fail(fmt.Errorf("bad table name: %w", err))
		}
		l, err := list(c, name)
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
