// Package all links every analyzer into the binary: importing it runs each
// analyzer's registration. Adding an analyzer is one folder and one line here.
package all

import (
	_ "github.com/zoomprobe/zoomprobe/analyzers/dnsfilter"
	_ "github.com/zoomprobe/zoomprobe/analyzers/httpinspect"
	_ "github.com/zoomprobe/zoomprobe/analyzers/reach"
	_ "github.com/zoomprobe/zoomprobe/analyzers/tls"
)
