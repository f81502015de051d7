// Package promql is a small PromQL scanner for the tests of deploy/: enough
// to list the metric selectors and label names an expression uses, so a test
// can check them against deploy/metrics.txt (ParseMetrics reads it). It does not validate syntax: promtool (rules) and the e2e
// tests (every dashboard query runs against a real Prometheus) do that.
// The real parser (prometheus/promql/parser) would pull the whole Prometheus
// module into go.mod for one check, hence this scanner.
package promql

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
)

// Metric is one line of metrics.txt.
type Metric struct {
	Name   string
	Labels []string
	Type   string // counter or gauge
}

var metricLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)\{([a-zA-Z0-9_,]*)\}\s+(counter|gauge)$`)

// ParseMetrics reads metrics.txt: `name{label,...} type` a line, # comments.
func ParseMetrics(r io.Reader) (map[string]Metric, error) {
	out := map[string]Metric{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := metricLine.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("metrics.txt line %d: %q is not `name{label,...} counter|gauge`", n, line)
		}
		if _, dup := out[m[1]]; dup {
			return nil, fmt.Errorf("metrics.txt line %d: %s listed twice", n, m[1])
		}
		var labels []string
		if m[2] != "" {
			labels = strings.Split(m[2], ",")
		}
		out[m[1]] = Metric{Name: m[1], Labels: labels, Type: m[3]}
	}
	return out, sc.Err()
}

// Selector is a metric name and the label names its matchers use.
type Selector struct {
	Name   string
	Labels []string
}

// Usage is what an expression refers to.
type Usage struct {
	Selectors []Selector
	Grouping  []string // labels in by/without/on/ignoring/group_left/group_right
	Functions []string
}

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

var keywords = map[string]bool{
	"and": true, "or": true, "unless": true, "offset": true, "bool": true, "inf": true, "nan": true, "atan2": true,
}

// aggregators take `by (...)` or `without (...)` before their parentheses.
var aggregators = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
}

var groupingWords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

// grafanaVars are replaced by a duration before scanning.
var grafanaVars = regexp.MustCompile(`\$__(rate_interval|interval|range)|\$\{__(rate_interval|interval|range)\}`)

// ScanPromQL lists the selectors, grouping labels and functions of expr.
func ScanPromQL(expr string) (Usage, error) {
	s := grafanaVars.ReplaceAllString(expr, "5m")
	var u Usage
	i := 0
	next := func() (byte, bool) {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
			i++
		}
		if i >= len(s) {
			return 0, false
		}
		return s[i], true
	}
	for {
		c, ok := next()
		if !ok {
			return u, nil
		}
		switch {
		case c == '"' || c == '\'' || c == '`':
			end, err := skipString(s, i)
			if err != nil {
				return u, err
			}
			i = end
		case c == '#': // comment to end of line
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '[':
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				return u, fmt.Errorf("unclosed [ at %d in %q", i, expr)
			}
			i += j + 1
		case c == '{': // a selector with no name: {__name__=~"..."}
			labels, end, err := scanMatchers(s, i)
			if err != nil {
				return u, err
			}
			u.Selectors = append(u.Selectors, Selector{Labels: labels})
			i = end
		case c >= '0' && c <= '9' || c == '.':
			for i < len(s) && (isIdent(s[i]) || s[i] == '.') {
				i++ // numbers and durations: 0.05, 1e3, 7d, 1h30m
			}
		case isIdentStart(c):
			start := i
			for i < len(s) && isIdent(s[i]) {
				i++
			}
			word := s[start:i]
			after, _ := next()
			switch {
			case groupingWords[strings.ToLower(word)]:
				if after != '(' {
					continue // group_left without a list
				}
				end := strings.IndexByte(s[i:], ')')
				if end < 0 {
					return u, fmt.Errorf("unclosed %s( in %q", word, expr)
				}
				for _, l := range strings.Split(s[i+1:i+end], ",") {
					if l = strings.TrimSpace(l); l != "" {
						if !labelName.MatchString(l) {
							return u, fmt.Errorf("%q in %s(...) is not a label name in %q", l, word, expr)
						}
						u.Grouping = append(u.Grouping, l)
					}
				}
				i += end + 1
			case keywords[strings.ToLower(word)]:
			case after == '(' || aggregators[strings.ToLower(word)]:
				u.Functions = append(u.Functions, word)
			default:
				sel := Selector{Name: word}
				if after == '{' {
					labels, end, err := scanMatchers(s, i)
					if err != nil {
						return u, err
					}
					sel.Labels = labels
					i = end
				}
				u.Selectors = append(u.Selectors, sel)
			}
		default:
			i++ // operators and parentheses
		}
	}
}

// scanMatchers reads `{a="x", b=~"y"}` from s[i] == '{' and returns the label names.
func scanMatchers(s string, i int) ([]string, int, error) {
	var labels []string
	i++
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == ',' || s[i] == '\n' || s[i] == '\t') {
			i++
		}
		if i >= len(s) {
			return nil, i, fmt.Errorf("unclosed { in %q", s)
		}
		if s[i] == '}' {
			return labels, i + 1, nil
		}
		start := i
		for i < len(s) && isIdent(s[i]) {
			i++
		}
		if start == i {
			return nil, i, fmt.Errorf("label name expected at %d in %q", i, s)
		}
		labels = append(labels, s[start:i])
		for i < len(s) && strings.IndexByte(" =!~", s[i]) >= 0 {
			i++
		}
		if i >= len(s) || (s[i] != '"' && s[i] != '\'' && s[i] != '`') {
			return nil, i, fmt.Errorf("quoted value expected at %d in %q", i, s)
		}
		end, err := skipString(s, i)
		if err != nil {
			return nil, i, err
		}
		i = end
	}
}

func skipString(s string, i int) (int, error) {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		if s[j] == '\\' && q != '`' {
			j++
			continue
		}
		if s[j] == q {
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("unclosed string at %d in %q", i, s)
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdent(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

// TargetLabels are the labels Prometheus adds to every series (site comes
// from the scrape config: zoomprobe has no notion of sites).
var TargetLabels = []string{"job", "instance", "site", "node", "__name__"}

// Builtin are series Prometheus itself makes, usable next to metrics.txt.
var Builtin = map[string]Metric{
	"up": {Name: "up", Type: "gauge"},
}

// CheckUsage reports every metric name not in the contract, every matcher
// label the metric does not have, and every grouping label none of the
// expression's metrics has.
func CheckUsage(expr string, contract map[string]Metric) []string {
	u, err := ScanPromQL(expr)
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	known := map[string]bool{}
	for _, l := range TargetLabels {
		known[l] = true
	}
	for _, sel := range u.Selectors {
		m, ok := contract[sel.Name]
		if !ok {
			m, ok = Builtin[sel.Name]
		}
		if !ok {
			problems = append(problems, fmt.Sprintf("metric %q is not in deploy/metrics.txt", sel.Name))
			continue
		}
		for _, l := range m.Labels {
			known[l] = true
		}
	}
	for _, sel := range u.Selectors {
		m, ok := contract[sel.Name]
		if !ok {
			m, ok = Builtin[sel.Name]
		}
		if !ok {
			continue
		}
		for _, l := range sel.Labels {
			if !contains(m.Labels, l) && !contains(TargetLabels, l) {
				problems = append(problems, fmt.Sprintf("%s has no label %q (it has %v)", sel.Name, l, m.Labels))
			}
		}
	}
	for _, l := range u.Grouping {
		if !known[l] {
			problems = append(problems, fmt.Sprintf("grouping label %q belongs to none of the expression's metrics", l))
		}
	}
	if len(u.Selectors) == 0 && !contains(u.Functions, "vector") && !contains(u.Functions, "time") {
		problems = append(problems, "no metric in expression")
	}
	sort.Strings(problems)
	return problems
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
