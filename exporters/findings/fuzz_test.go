package findings

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// Whatever strings a finding carries, the page stays one group of
// well-formed HTML without script, the server name reads back (parsed as a
// browser would) exactly as Visible shows it, and no control character but
// the template's own newlines reaches the page.
func FuzzPage(f *testing.F) {
	f.Add("zoom.us", "FortiGate", "Zoom shows an error.", "a.pcapng")
	f.Add("<script>alert(1)</script>\x1b[2J", "</td></tr></table><script>", "\u202e\x00\xff", `"><img src=x onerror=alert(1)>`)
	f.Add("<!--", "]]>", "{{.Site}}", "javascript:alert(1)")
	f.Fuzz(func(t *testing.T, sni, product, userSees, evidence string) {
		st, _ := testStore(Settings{ResolveAfter: time.Hour, MaxBytes: 1 << 20})
		fd := tlsFinding("10.20.30.40", t0)
		fd.SNI, fd.Product, fd.UserSees = sni, product, userSees
		fd.Evidence = map[string]any{"evidence_file": evidence}
		st.Emit(fd)
		rec := httptest.NewRecorder()
		(&Page{Store: st}).HTML().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/findings", nil))
		body := rec.Body.String()
		for _, r := range body {
			if r != '\n' && needsEscape(r) {
				t.Fatalf("raw %U on the page", r)
			}
		}
		doc, err := html.Parse(strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var groups, scripts int
		var name string
		var walk func(n *html.Node)
		walk = func(n *html.Node) {
			if n.Type == html.ElementNode {
				switch n.Data {
				case "script", "img", "iframe", "object", "embed", "link":
					scripts++
				case "tbody":
					if hasClass(n, "group") {
						groups++
					}
				case "div":
					if hasClass(n, "name") {
						name = text(n)
					}
				}
				for _, a := range n.Attr {
					if strings.HasPrefix(a.Key, "on") {
						scripts++
					}
				}
			}
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				walk(c)
			}
		}
		walk(doc)
		if groups != 1 || scripts != 0 {
			t.Fatalf("%d groups, %d active elements or handlers", groups, scripts)
		}
		if want := Visible(cut(sni, maxName)); want != name {
			t.Fatalf("name reads %q, want %q", name, want)
		}
	})
}

func hasClass(n *html.Node, class string) bool {
	for _, a := range n.Attr {
		if a.Key == "class" && strings.Contains(" "+a.Val+" ", " "+class+" ") {
			return true
		}
	}
	return false
}

func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}
