// Command argocd-lua runs an Argo CD resource health check (a Lua script such as
// docs/argocd/health.lua) on an object, with gopher-lua (github.com/yuin/gopher-lua), the
// Lua interpreter inside Argo CD, set up the way Argo CD sets it up for a check from
// argocd-cm:
//
//   - no standard libraries but base, table and package (Argo CD also opens a restricted
//     os; -open-libs opens them all, as `resource.customizations.useOpenLibs.<group_kind>`
//     does);
//   - the object is the global `obj`, decoded from JSON: numbers are Lua numbers (float64),
//     null is nil;
//   - the script's last return value must be a table; a status outside Healthy,
//     Progressing, Degraded, Suspended, Missing, Unknown becomes Unknown;
//   - one second to run.
//
// It prints two lines, like docs/argocd/try-health.lua does under lua5.4:
//
//	status: <status>
//	message: <message>
//
// Usage: argocd-lua [-open-libs] health.lua < object.json
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	lua "github.com/yuin/gopher-lua"
)

var validStatus = map[string]bool{
	"Healthy": true, "Progressing": true, "Degraded": true,
	"Suspended": true, "Missing": true, "Unknown": true,
}

func main() {
	openLibs := flag.Bool("open-libs", false, "open every standard library (Argo CD's useOpenLibs)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: argocd-lua [-open-libs] health.lua < object.json")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	script, err := os.ReadFile(flag.Arg(0))
	if err != nil {
		fail(err)
	}
	raw, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	var object map[string]any
	if err := json.Unmarshal(raw, &object); err != nil {
		fail(fmt.Errorf("the object on stdin: %w", err))
	}
	status, message, err := health(string(script), object, *openLibs)
	if err != nil {
		fail(err)
	}
	fmt.Printf("status: %s\nmessage: %s\n", status, message)
}

func health(script string, object map[string]any, openLibs bool) (string, string, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: !openLibs})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return "", "", err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, object))
	if err := l.DoString(script); err != nil {
		return "", "", err
	}
	result, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return "", "", fmt.Errorf("expect table output from Lua script, not %s", l.Get(-1).Type())
	}
	status := lua.LVAsString(result.RawGetString("status"))
	message := lua.LVAsString(result.RawGetString("message"))
	if !validStatus[status] {
		return "Unknown", "Lua returned an invalid health status", nil
	}
	return status, message, nil
}

// toLua turns a decoded JSON value into a Lua value: objects and arrays into tables, numbers
// into numbers, null into nil.
func toLua(l *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case []any:
		t := l.CreateTable(len(v), 0)
		for _, item := range v {
			t.Append(toLua(l, item))
		}
		return t
	case map[string]any:
		t := l.CreateTable(0, len(v))
		for key, item := range v {
			t.RawSetH(lua.LString(key), toLua(l, item))
		}
		return t
	}
	return lua.LNil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "argocd-lua:", err)
	os.Exit(1)
}
