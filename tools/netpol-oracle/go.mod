module microseg.local/tools/netpol-oracle

go 1.25

require github.com/mattfenwick/cyclonus v0.5.6 // indirect
