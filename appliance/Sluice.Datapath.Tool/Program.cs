using Microsoft.Extensions.Logging;
using Sluice.Datapath.Interop;
using Sluice.Datapath.Loading;
using Sluice.Datapath.Tool;

// sluice-dp: load | status | sweep | remove. Run it inside the LB's network namespace
// (nsenter --net=/run/netns/NAME, not `ip netns exec`, which hides /sys/fs/bpf).
using var loggers = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Information));
var logger = loggers.CreateLogger("sluice-dp");
LibbpfLog.RouteTo(loggers.CreateLogger("libbpf"));
try
{
    return args switch
    {
        ["load", .. var rest] => Commands.Load(rest, logger),
        ["status", .. var rest] => Commands.Status(rest),
        ["sweep", .. var rest] => Commands.Sweep(rest),
        ["remove", .. var rest] => Commands.Remove(rest, logger),
        _ => Commands.Usage(),
    };
}
catch (ToolException ex)
{
    Console.Error.WriteLine($"sluice-dp: {ex.Message}");
    return 2;
}
catch (Exception ex) when (ex is DatapathException or BpfException)
{
    Console.Error.WriteLine($"sluice-dp: {ex.Message}");
    return 1;
}
