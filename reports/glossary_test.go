package reports

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// notRules are string literals of the form "word:..." (without spaces)
// in the scanned sources that are not rules: addresses, URLs, labels.
var notRules = map[string]string{
	"ff02":     "an IPv6 address",
	"http":     "a URL",
	"https":    "a URL",
	"instance": "the seed of an instance's MAC",
	"options":  "a tc option string",
	"unix":     "a socket address",
	"k8s":      "a Kubernetes label's source (k8s:app=web)",
	"any":      "a label's source (any:app=web)",
	"netns":    "the name of a namespace no node resolved (netns:<inode>)",
	// gen 3 on the kernel names an unknown BPF reason code so; it is by
	// definition in no glossary.
	"reason(%d)": "an unknown reason code",
}

// ruleCalls are the functions whose last argument is the rule of the
// event they record.
var ruleCalls = map[string]bool{"trace": true, "drop": true, "dropAt": true, "linkDrop": true, "linkDropAt": true, "routeOut": true, "sendIP": true}

// scanTerms reads the runtimes' sources (datapath, sim, scenarios) and
// returns the terms they emit: drop reasons (constants of type Reason,
// literals assigned to a Reason field, literal keys of a drops map), rules (every "word:…" string literal
// outside error messages, and the colon-free literals given as a rule)
// and spawn steps (mark's literal step), each with where it was found.
func scanTerms(t *testing.T) map[TermKind]map[string]string {
	t.Helper()
	found := map[TermKind]map[string]string{KindReason: {}, KindRule: {}, KindStep: {}}
	prefixed := regexp.MustCompile(`^[a-z][a-z0-9-]*:\S*$`) // a rule has no spaces; messages do
	for _, root := range []string{"../datapath", "../sim", "../scenarios"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				return err
			}
			at := func(n ast.Node) string { p := fset.Position(n.Pos()); return p.Filename + ":" + strconv.Itoa(p.Line) }
			lit := func(e ast.Expr) (string, bool) {
				for {
					switch x := e.(type) {
					case *ast.BinaryExpr: // "bond:active-backup:" + name
						e = x.X
						continue
					case *ast.CallExpr: // fmt.Sprintf("sg:%s:%d", …)
						if len(x.Args) == 0 {
							return "", false
						}
						e = x.Args[0]
						continue
					case *ast.BasicLit:
						if x.Kind != token.STRING {
							return "", false
						}
						s, err := strconv.Unquote(x.Value)
						return s, err == nil
					}
					return "", false
				}
			}
			add := func(kind TermKind, text string, n ast.Node) {
				name := termName(kind, text)
				if _, ok := notRules[name]; ok && kind == KindRule {
					return
				}
				if name != "" {
					found[kind][name] = at(n)
				}
			}
			ast.Inspect(f, func(n ast.Node) bool {
				switch x := n.(type) {
				case *ast.Field: // struct tags
					return false
				case *ast.CallExpr:
					name := ""
					switch fn := x.Fun.(type) {
					case *ast.SelectorExpr:
						name = fn.Sel.Name
					case *ast.Ident:
						name = fn.Name
					}
					if name == "Errorf" || name == "Printf" || strings.HasPrefix(name, "Fatal") || name == "progress" {
						return false
					}
					if ruleCalls[name] && len(x.Args) > 0 {
						if s, ok := lit(x.Args[len(x.Args)-1]); ok {
							add(KindRule, s, x)
						}
					}
					if name == "mark" && len(x.Args) == 2 {
						if s, ok := lit(x.Args[1]); ok {
							add(KindStep, s, x)
						}
						return false
					}
				case *ast.ValueSpec:
					typ := ""
					switch tx := x.Type.(type) {
					case *ast.Ident:
						typ = tx.Name
					case *ast.SelectorExpr:
						typ = tx.Sel.Name
					}
					for i, v := range x.Values {
						s, ok := lit(v)
						switch {
						case !ok:
						case typ == "Reason":
							add(KindReason, s, v)
						case strings.HasPrefix(x.Names[i].Name, "Rule") && typ == "":
							add(KindRule, s, v)
						}
					}
				case *ast.KeyValueExpr:
					if k, ok := x.Key.(*ast.Ident); ok && (k.Name == "Rule" || strings.HasPrefix(k.Name, "rule") || strings.HasSuffix(k.Name, "Rule")) {
						if s, ok := lit(x.Value); ok {
							add(KindRule, s, x)
						}
					}
				case *ast.AssignStmt:
					for i, l := range x.Lhs {
						if i >= len(x.Rhs) {
							break
						}
						switch lx := l.(type) {
						case *ast.SelectorExpr:
							if lx.Sel.Name == "Rule" || lx.Sel.Name == "rule" {
								if s, ok := lit(x.Rhs[i]); ok {
									add(KindRule, s, x)
								}
							}
							if lx.Sel.Name == "Reason" { // a probe's outcome
								if s, ok := lit(x.Rhs[i]); ok {
									add(KindReason, s, x)
								}
							}
						case *ast.IndexExpr: // drops["rx-ring-full"] = n
							if id, ok := lx.X.(*ast.Ident); ok && strings.EqualFold(id.Name, "drops") {
								if s, ok := lit(lx.Index); ok {
									add(KindReason, s, x)
								}
							}
						}
					}
				case *ast.BasicLit:
					if x.Kind != token.STRING {
						break
					}
					s, _ := strconv.Unquote(x.Value)
					if prefixed.MatchString(s) {
						name := termName(KindRule, s)
						if _, ok := notRules[name]; !ok && termIndex[KindStep][name].Name == "" {
							add(KindRule, s, x)
						}
					}
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return found
}

// TestGlossaryComplete: every drop reason, rule prefix and spawn step the
// sources emit has a glossary entry, and every entry is still emitted
// somewhere. A new constant, rule or step fails here until it is
// explained in Glossary (or, for a "word:" literal that is no rule, in
// notRules).
func TestGlossaryComplete(t *testing.T) {
	found := scanTerms(t)
	for _, kind := range []TermKind{KindReason, KindRule, KindStep} {
		var names []string
		for n := range found[kind] {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if _, ok := LookupTerm(kind, n); !ok {
				t.Errorf("%s: %s %q has no glossary entry (add it to reports.Glossary)", found[kind][n], kind, n)
			}
		}
		if len(names) < 5 {
			t.Errorf("the scan found only %d %ss: %v", len(names), kind, names)
		}
	}
	seen := map[string]bool{}
	for _, term := range Glossary {
		key := string(term.Kind) + " " + term.Name
		if seen[key] {
			t.Errorf("glossary: %s twice", key)
		}
		seen[key] = true
		if _, ok := found[term.Kind][term.Name]; !ok {
			t.Errorf("glossary: %s %q is not emitted anywhere the scan looks (stale entry?)", term.Kind, term.Name)
		}
		if term.Meaning == "" || strings.Contains(term.Meaning, "\n") {
			t.Errorf("glossary: %s %q needs a one-line meaning", term.Kind, term.Name)
		}
	}
}

// TestGlossaryLinked: every reason, rule and step a report names is
// linked to its glossary entry (Markdown: the Glossary section; HTML:
// the entry's anchor), and the glossary lists exactly the terms used.
func TestGlossaryLinked(t *testing.T) {
	r := sample()
	r.Runs[0].Drops = map[string]int{"not-for-me": 3, "bond-backup": 1}
	r.Runs[0].Probes[10].Rule = "bond:backup"
	var md, html bytes.Buffer
	if err := WriteMarkdown(&md, r); err != nil {
		t.Fatal(err)
	}
	if err := WriteHTML(&html, r); err != nil {
		t.Fatal(err)
	}
	m, h := md.String(), html.String()
	for _, want := range []string{
		"- vlan frames dropped in the fabric (probes and all other traffic), by reason: [bond-backup](#glossary) 1, [not-for-me](#glossary) 3",
		"dropped at core1, [no-route](#glossary), rule [bond:backup](#glossary)",
		"[1-schedule:host1](#glossary) → [2-4-port-created](#glossary)",
		"## Glossary\n",
		"| `bond` | rule prefix | " + termIndex[KindRule]["bond"].Meaning + " |",
		"| `not-for-me` | drop reason | ",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, m)
		}
	}
	if strings.Contains(m, "| `ttl-exceeded` |") {
		t.Error("the Markdown glossary lists a term the report does not use")
	}
	for _, term := range usedTerms(r) {
		id := anchor(term)
		if strings.Count(h, `id="`+id+`"`) != 1 {
			t.Errorf("HTML has no single glossary entry %q", id)
		}
		if !strings.Contains(h, `href="#`+id+`"`) {
			t.Errorf("HTML never links %q", id)
		}
	}
	if !strings.Contains(h, `<a href="#term-rule-prefix-bond" title="`) {
		t.Errorf("HTML does not link the rule bond:backup to its prefix:\n%s", h)
	}
}
