package main

// The table model of provider/src/realize/nftables/ir.ts as JSON (bigints as decimal strings).

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
)

// Num is an integer sent as a JSON number or a decimal string (addresses are bigints on the TS side).
type Num struct{ big.Int }

func (n *Num) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if _, ok := n.SetString(s, 10); !ok {
		return fmt.Errorf("not an integer: %s", b)
	}
	return nil
}

type AddrKey struct {
	V  int `json:"v"`
	Lo Num `json:"lo"`
	Hi Num `json:"hi"`
}

type ServiceKey struct {
	Protocol string `json:"protocol"`
	Lo       int    `json:"lo"`
	Hi       int    `json:"hi"`
}

type Verdict struct {
	Kind   string `json:"kind"`
	Target string `json:"target,omitempty"`
}

// Element is any set or map element: the fields used depend on the set's kind.
type Element struct {
	// set: the address key itself; port-map: lo/hi ports.
	V  int  `json:"v"`
	Lo *Num `json:"lo"`
	Hi *Num `json:"hi"`
	// service-set, addr-map
	Addr    *AddrKey    `json:"addr"`
	Service *ServiceKey `json:"service"`
	Verdict *Verdict    `json:"verdict"`
}

type NamedSet struct {
	Kind     string    `json:"kind"`
	Name     string    `json:"name"`
	V        int       `json:"v"`
	Timeout  int       `json:"timeout"`
	Size     int       `json:"size"`
	Elements []Element `json:"elements"`
}

type Match struct {
	M         string   `json:"m"`
	States    []string `json:"states"`
	Dir       string   `json:"dir"`
	Name      string   `json:"name"`
	V         int      `json:"v"`
	Field     string   `json:"field"`
	Op        string   `json:"op"`
	Addr      string   `json:"addr"`
	Set       string   `json:"set"`
	Protocols []string `json:"protocols"`
	Type      *int     `json:"type"`
	Code      *int     `json:"code"`
}

type Vmap struct {
	Key   string `json:"key"`
	V     int    `json:"v"`
	Field string `json:"field"`
	Map   string `json:"map"`
}

type RecordFlow struct {
	V   int    `json:"v"`
	Set string `json:"set"`
}

type Rule struct {
	Match      []Match     `json:"match"`
	Vmap       *Vmap       `json:"vmap"`
	Counter    bool        `json:"counter"`
	CtMark     *uint32     `json:"ctMark"`
	RecordFlow *RecordFlow `json:"recordFlow"`
	Log        *string     `json:"log"`
	Verdict    *Verdict    `json:"verdict"`
	Comment    *string     `json:"comment"`
}

type Chain struct {
	Name  string `json:"name"`
	Hook  string `json:"hook"`
	Rules []Rule `json:"rules"`
}

type Table struct {
	Family string     `json:"family"`
	Name   string     `json:"name"`
	Sets   []NamedSet `json:"sets"`
	Chains []Chain    `json:"chains"`
}

// SetChange is the element update of one set: its kind and family (how keys are encoded) with the
// elements to delete and to add.
type SetChange struct {
	Set    NamedSet  `json:"set"`
	Delete []Element `json:"delete"`
	Add    []Element `json:"add"`
}

type Request struct {
	ID      int             `json:"id"`
	Op      string          `json:"op"`
	Table   json.RawMessage `json:"table"`
	Changes []SetChange     `json:"changes"`
}
