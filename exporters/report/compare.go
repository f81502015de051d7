package report

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Changes is what changed between a previous audit and this one.
type Changes struct {
	PreviousFile      string    `json:"previous_file"`
	PreviousGenerated time.Time `json:"previous_generated"`
	PreviousOverall   Status    `json:"previous_overall"`
	// Summary is one sentence: how many requirements changed, new and
	// resolved failures.
	Summary string `json:"summary"`
	// Requirements whose status changed; a row one report lacks counts as
	// SKIP there.
	Requirements []RequirementChange `json:"requirements,omitempty"`
	// NewFailures fail now and did not before.
	NewFailures []Failure `json:"new_failures,omitempty"`
	// Resolved failed before and were checked again without failing.
	Resolved []Failure `json:"resolved,omitempty"`
	// NotChecked failed before and were not checked this time (a check not
	// selected, no capture given): neither fixed nor still broken.
	NotChecked []Failure `json:"not_checked,omitempty"`
}

// RequirementChange is one requirement whose status changed.
type RequirementChange struct {
	ID     string `json:"id"`
	Title  string `json:"title"`
	Before Status `json:"before"`
	After  Status `json:"after"`
}

// Failure is a failed check (check and target) or an observed finding
// (kind, reason and server), keyed so that two audits can be compared.
type Failure struct {
	Key  string `json:"key"`
	What string `json:"what"`
}

// observedID is the requirement row of passive analysis (audit/).
const observedID = "observed"

// Compare says what changed from prev (read from prevFile) to cur.
func Compare(prev, cur *Report, prevFile string) *Changes {
	c := &Changes{PreviousFile: prevFile, PreviousGenerated: prev.Generated, PreviousOverall: prev.Overall}
	before := map[string]Requirement{}
	for _, q := range prev.Requirements {
		before[q.ID] = q
	}
	seen := map[string]bool{}
	for _, q := range cur.Requirements {
		seen[q.ID] = true
		b, ok := before[q.ID]
		bs := Skip
		if ok {
			bs = b.Status
		}
		if bs != q.Status {
			c.Requirements = append(c.Requirements, RequirementChange{ID: q.ID, Title: q.Title, Before: bs, After: q.Status})
		}
	}
	for _, q := range prev.Requirements {
		if !seen[q.ID] && q.Status != Skip {
			c.Requirements = append(c.Requirements, RequirementChange{ID: q.ID, Title: q.Title, Before: q.Status, After: Skip})
		}
	}

	was, wasKeys := failures(prev)
	now, nowKeys := failures(cur)
	checked := checkedKeys(cur)
	for _, k := range nowKeys {
		if _, ok := was[k]; !ok {
			c.NewFailures = append(c.NewFailures, now[k])
		}
	}
	for _, k := range wasKeys {
		if _, ok := now[k]; ok {
			continue
		}
		if checked(k) {
			c.Resolved = append(c.Resolved, was[k])
		} else {
			c.NotChecked = append(c.NotChecked, was[k])
		}
	}
	c.Summary = changesSummary(c)
	return c
}

func changesSummary(c *Changes) string {
	when := "the previous audit"
	if !c.PreviousGenerated.IsZero() {
		when = "the audit of " + c.PreviousGenerated.UTC().Format("2006-01-02 15:04 UTC")
	}
	if c.PreviousOverall != "" {
		when += " (" + string(c.PreviousOverall) + ")"
	}
	if len(c.Requirements) == 0 && len(c.NewFailures) == 0 && len(c.Resolved) == 0 {
		s := "Nothing changed since " + when + "."
		if len(c.NotChecked) > 0 {
			s = strings.TrimSuffix(s, ".") + fmt.Sprintf(", but %s %s not checked again.", plural(len(c.NotChecked), "earlier failure"), wereWas(len(c.NotChecked)))
		}
		return s
	}
	parts := []string{
		plural(len(c.Requirements), "requirement") + " changed",
		plural(len(c.NewFailures), "new failure"),
		fmt.Sprintf("%d resolved", len(c.Resolved)),
	}
	if len(c.NotChecked) > 0 {
		parts = append(parts, fmt.Sprintf("%d not checked again", len(c.NotChecked)))
	}
	return "Since " + when + ": " + strings.Join(parts, ", ") + "."
}

func wereWas(n int) string {
	if n == 1 {
		return "was"
	}
	return "were"
}

// failures lists a report's failures by key, in report order: failed
// checks, then observed (passive) findings.
func failures(r *Report) (map[string]Failure, []string) {
	m := map[string]Failure{}
	var keys []string
	add := func(f Failure) {
		if _, dup := m[f.Key]; !dup {
			m[f.Key] = f
			keys = append(keys, f.Key)
		}
	}
	for _, ch := range r.Checks {
		if ch.Status == Fail {
			add(Failure{Key: "check " + ch.Check + " " + ch.Target, What: ch.Check + ": " + ch.Summary})
		}
	}
	for i := range r.Findings {
		f := &r.Findings[i]
		if strings.HasPrefix(f.Source, "probe/") {
			continue // the checks above say it
		}
		what := string(f.Kind) + " — " + string(f.Reason)
		var where []string
		if f.Service != "" {
			where = append(where, f.Service)
		}
		if f.Flow != nil && f.Flow.Server.IsValid() {
			where = append(where, f.Flow.Transport+" "+netip.AddrPortFrom(f.Flow.Server, f.Flow.ServerPort).String())
		}
		if f.SNI != "" {
			where = append(where, "sni "+f.SNI)
		}
		if len(where) > 0 {
			what += " (" + strings.Join(where, ", ") + ")"
		}
		add(Failure{Key: "observed " + what, What: "observed: " + what})
	}
	return m, keys
}

// checkedKeys tells whether r checked again what a failure key names: the
// same check tested the same target, or passive analysis ran.
func checkedKeys(r *Report) func(key string) bool {
	ran := map[string]bool{}
	for _, ch := range r.Checks {
		if ch.Status != Skip { // SKIP: not tested (its name did not resolve)
			ran["check "+ch.Check+" "+ch.Target] = true
		}
	}
	observed := false
	for _, q := range r.Requirements {
		if q.ID == observedID {
			observed = true
		}
	}
	return func(key string) bool {
		if strings.HasPrefix(key, "observed ") {
			return observed
		}
		return ran[key]
	}
}
