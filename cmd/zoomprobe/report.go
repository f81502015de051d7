package main

import (
	"bufio"
	"fmt"
	"os"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/zoomprobe/zoomprobe/exporters/report"
)

func init() {
	commands = append(commands, command{
		Name: "report", Help: "Merge audit reports of many sites (written with audit --output.format json) into one fleet readiness report.",
		Setup: func(cmd *kingpin.CmdClause, g *globals) func() int {
			format := cmd.Flag("output.format", "Report format: text, markdown, html (self-contained) or json.").Default("text").Enum(report.Formats...)
			file := cmd.Flag("output.file", "Write the report here instead of standard output.").Default("-").String()
			files := cmd.Arg("reports", "Audit reports in JSON, one or more per site (the newest of a site counts).").Required().ExistingFiles()
			return func() int { return runReport(*format, *file, *files) }
		},
	})
}

// runReport exits 0 when every site is ready or warns, 1 when a site is not
// ready (as audit does for one site), 2 when a report cannot be read.
func runReport(format, file string, files []string) int {
	fail := func(f string, args ...any) int {
		fmt.Fprintf(os.Stderr, "zoomprobe report: "+f+"\n", args...)
		return 2
	}
	var reps []*report.Report
	for _, name := range files {
		r, err := readReportFile(name)
		if err != nil {
			return fail("%v", err)
		}
		reps = append(reps, r)
	}
	fleet := report.MergeFleet(reps, files, time.Now())
	out, closeOut, err := openOutput(file)
	if err != nil {
		return fail("--output.file: %v", err)
	}
	color := format == "text" && file == "-" && isTerminal(os.Stdout) && os.Getenv("NO_COLOR") == ""
	bw := bufio.NewWriter(out)
	err = report.RenderFleet(bw, format, fleet, color)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := closeOut(); err == nil {
		err = cerr
	}
	if err != nil {
		return fail("writing the report: %v", err)
	}
	return fleet.ExitCode()
}
