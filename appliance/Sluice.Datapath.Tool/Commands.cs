using Microsoft.Extensions.Logging;
using Sluice.Datapath.Connections;
using Sluice.Datapath.Loading;
using Sluice.Datapath.Observability;
using Sluice.Datapath.Programming;

namespace Sluice.Datapath.Tool;

internal static class Commands
{
    public static int Usage()
    {
        Console.Error.WriteLine("""
            usage:
              sluice-dp load   --pin DIR --interfaces IF[,IF...] --services FILE [--mode native|generic]
                               [--seed N] [--flow-table N]
              sluice-dp status --pin DIR
              sluice-dp sweep  --pin DIR [--interval-ms N]   delete expired connections until stopped
              sluice-dp remove --pin DIR --interfaces IF[,IF...]
            """);
        return 2;
    }

    /// <summary>Loads (or adopts), programs the services, attaches, and exits: the datapath keeps running.</summary>
    public static int Load(string[] args, ILogger logger)
    {
        var a = new Arguments(args, new HashSet<string> { "--pin", "--interfaces", "--services", "--mode", "--seed", "--flow-table" }, new HashSet<string>());
        var (_, specs, snat) = ServicesFile.Load(a.Required("--services"));
        var mode = a.Optional("--mode") switch
        {
            null or "native" => AttachMode.Native,
            "generic" => AttachMode.Generic,
            var other => throw new ToolException($"--mode: \"{other}\" is not native or generic"),
        };
        var options = new DatapathOptions
        {
            PinPath = a.Required("--pin"),
            FlowHashSeed = a.UInt("--seed", 0),
            FlowTableSize = a.UInt("--flow-table", 1048576),
        };
        using var datapath = XdpDatapath.Load(options, logger);
        var programmer = new DatapathProgrammer(datapath);
        programmer.SetSnatAddresses(snat);
        foreach (var spec in specs)
        {
            var programmed = programmer.Apply(spec);
            Console.WriteLine($"service {spec} ({spec.Mode.ToString().ToLowerInvariant()}): id {programmed.Id}, {spec.Backends.Count} backends");
        }
        foreach (var (name, attached) in datapath.AttachAll(a.List("--interfaces"), mode))
        {
            Console.WriteLine($"attached program {datapath.ProgramId} to {name} ({attached.ToString().ToLowerInvariant()})");
        }
        return 0;
    }

    public static int Status(string[] args)
    {
        var a = new Arguments(args, new HashSet<string> { "--pin" }, new HashSet<string>());
        using var maps = PinnedMaps.Open(a.Required("--pin"));
        var snapshot = DatapathSnapshot.Read(maps);
        foreach (var service in snapshot.Services)
        {
            Console.WriteLine($"{service.Vip}:{service.Port}/{service.Protocol.ToString().ToLowerInvariant()}  {service.Mode.ToString().ToLowerInvariant()}" +
                $"  packets {service.Traffic.Packets}  new flows {service.Traffic.NewFlows}  replies {service.Traffic.ReplyPackets}");
            foreach (var backend in service.Backends)
            {
                Console.WriteLine($"    -> {backend.Address}:{backend.Port,-6} packets {backend.Traffic.Packets,8}  bytes {backend.Traffic.Bytes,10}" +
                    $"  new flows {backend.Traffic.NewFlows,6}  replies {backend.Traffic.ReplyPackets,8}");
            }
        }
        Console.WriteLine($"flows in table: {snapshot.Flows}");
        Console.WriteLine("counters: " + string.Join("  ", snapshot.Counters.Where(c => c.Value > 0).Select(c => $"{c.Key}={c.Value}")));
        var drops = snapshot.Drops.Where(d => d.Value > 0).ToList();
        Console.WriteLine("drops:    " + (drops.Count == 0 ? "none" : string.Join("  ", drops.Select(d => $"{d.Key}={d.Value}"))));
        return 0;
    }

    /// <summary>
    /// Runs the connection sweeper against the pinned maps with the default timeouts until
    /// SIGINT or SIGTERM: what sluiced does, for a datapath loaded with <c>load</c>.
    /// </summary>
    public static int Sweep(string[] args)
    {
        var a = new Arguments(args, new HashSet<string> { "--pin", "--interval-ms" }, new HashSet<string>());
        var interval = TimeSpan.FromMilliseconds(a.UInt("--interval-ms", 1000));
        if (interval < TimeSpan.FromMilliseconds(100))
        {
            throw new ToolException("--interval-ms must be at least 100 (what a sweep retires is freed at the next)");
        }
        using var maps = PinnedMaps.Open(a.Required("--pin"));
        using var sweeper = new ConnectionSweeper(ConnectionMaps.Of(maps), new ConnectionTimeouts());
        using var stop = new CancellationTokenSource();
        using var term = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
        Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.Cancel(); };
        while (!stop.IsCancellationRequested)
        {
            var result = sweeper.Sweep(ConnectionTable.NowNs());
            if (result.TotalExpired > 0)
            {
                Console.WriteLine($"swept {result.TotalExpired} of {result.Connections.Count} connection(s) in {result.Duration.TotalMilliseconds:F1} ms");
            }
            stop.Token.WaitHandle.WaitOne(interval);
        }
        return 0;
    }

    /// <summary>The explicit end: detach from the interfaces and remove the pinned maps.</summary>
    public static int Remove(string[] args, ILogger logger)
    {
        var a = new Arguments(args, new HashSet<string> { "--pin", "--interfaces" }, new HashSet<string>());
        foreach (var name in a.List("--interfaces"))
        {
            XdpDatapath.Detach(name);
            Console.WriteLine($"detached from {name}");
        }
        XdpDatapath.Unpin(a.Required("--pin"));
        Console.WriteLine($"removed pinned maps at {a.Required("--pin")}");
        return 0;
    }
}
