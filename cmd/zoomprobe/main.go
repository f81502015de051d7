// Command zoomprobe watches Zoom traffic and says what breaks it.
package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"

	"github.com/zoomprobe/zoomprobe/certcheck"
)

// globals are the flags every subcommand shares.
type globals struct {
	configFile string
	site       string
	logger     *slog.Logger
	// hup receives SIGHUP from the first instant of run(): the default
	// action would kill a daemon that gets `systemctl reload` while it starts.
	hup chan os.Signal
}

// command is one subcommand. Each lives in its own file and registers itself
// in init(); setup declares its flags and returns the function that runs it,
// which returns the process exit status.
type command struct {
	Name, Help string
	Setup      func(cmd *kingpin.CmdClause, g *globals) func() int
}

var commands []command

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	// First thing: a SIGHUP before the daemon's loop runs is kept for it.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	app := kingpin.New("zoomprobe", "Watches Zoom traffic on a mirror port or gateway and says what breaks it.")
	app.Version(version.Print("zoomprobe"))
	app.HelpFlag.Short('h')
	g := &globals{hup: hup}
	app.Flag("config.file", "zoomprobe configuration file (YAML). Empty: the built-in default.").StringVar(&g.configFile)
	app.Flag("site", "Name of the site this probe watches (overrides the config's site:); shown in metrics, the event log and reports.").StringVar(&g.site)
	logCfg := &promslog.Config{}
	promslogflag.AddFlags(app, logCfg)

	runners := map[string]func() int{}
	for _, c := range commands {
		cmd := app.Command(c.Name, c.Help)
		runners[cmd.FullCommand()] = c.Setup(cmd, g)
	}
	selected, err := app.Parse(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "zoomprobe: %v (try --help)\n", err)
		return 2
	}
	g.logger = promslog.New(logCfg)
	if selected != "run" {
		signal.Stop(hup) // other commands end on a hangup, as usual
	}
	switch selected {
	case "run", "analyze", "audit":
		certcheck.PreloadSystemRoots() // read while the config and tables load
	}
	return runners[selected]()
}

func init() {
	commands = append(commands, command{
		Name: "version", Help: "Print the version and build information.",
		Setup: func(*kingpin.CmdClause, *globals) func() int {
			return func() int { fmt.Println(version.Print("zoomprobe")); return 0 }
		},
	})
}
