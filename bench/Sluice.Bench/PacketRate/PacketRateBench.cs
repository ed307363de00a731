using System.Diagnostics;
using System.Net;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Sluice.Bench.ControlPlane;
using Sluice.Bench.PacketCost;
using Sluice.Bench.Reporting;
using Sluice.Datapath.Abi;
using Sluice.Datapath.Loading;
using Sluice.Datapath.Programming;
using Sluice.Datapath.Testing;
using Sluice.Testing;
using Sluice.Testing.Packets;

namespace Sluice.Bench.PacketRate;

/// <summary>
/// Part 2: packets per second through generator → balancer → sink, counted at the sink,
/// for one flow and for a new flow every packet (new client address and port each frame).
/// </summary>
public static class PacketRateBench
{
    private static readonly IPAddress Vip = IPAddress.Parse("198.18.100.50");
    private static readonly IPAddress SinkAddress = IPAddress.Parse("198.18.31.2");

    public static PartResult Run(bool quick, Action<string> log)
    {
        var started = DateTimeOffset.UtcNow;
        var seconds = quick ? 0.3 : 3.0;
        int[] otherServices = quick ? [0, 100] : [0, 1_000, 10_000];
        var measurements = new List<Measurement>();
        using var lab = new RateLab();
        var lbs = lab.BalancerThread.Run(() => XdpDatapath.InterfaceIndex("lbs"));
        lab.BalancerThread.Run(() => lab.Bench.TxPorts.Update(lbs, lbs)); // devmap entries resolve in the writer's namespace

        void Measure(string name, IPAddress destination)
        {
            foreach (var (variant, vary) in new[] { ("one flow", false), ("new flow per packet", true) })
            {
                var pps = Rate(lab, destination, vary, seconds);
                measurements.Add(new("packet-rate", name, variant, pps / 1e6, "Mpps"));
                log($"packet-rate: {name}, {variant}: {pps / 1e6:F2} Mpps");
            }
        }

        // The ceiling: the generator's frames counted where they land.
        lab.BalancerThread.Run(() => lab.Bench.AttachProgram("bench_sink", "lbg"));
        Measure("ceiling: generator to sink", SinkAddress);
        lab.ClearBalancer();

        // Forward-only XDP: new MACs and a redirect, the floor for any XDP balancer.
        SetForward(lab, lbs);
        lab.BalancerThread.Run(() => lab.Bench.AttachProgram("bench_forward", "lbg"));
        lab.BalancerThread.Run(() => lab.Bench.AttachProgram("bench_pass", "lbs"));
        Measure("forward-only XDP (no NAT)", SinkAddress);
        lab.ClearBalancer();

        // Sluice, dnat (the rate bench has no reply path): the real program and control library,
        // alone and with many other services programmed (is it flat?).
        foreach (var others in new[] { 0, quick ? 1_000 : 99_999 })
        {
            lab.BalancerThread.Run(() =>
            {
                using var sluice = XdpDatapath.Load(new DatapathOptions { FlowTableSize = 1 << 22, MaxServices = 131_072, MaxBackends = 131_072 }, NullLogger.Instance);
                var programmer = new DatapathProgrammer(sluice);
                var services = new List<ServiceSpec> { new(Vip, 5000, L4Protocol.Udp, [new BackendSpec(SinkAddress, 5000)]) { Mode = ServiceMode.Dnat } };
                services.AddRange(Enumerable.Range(0, others).Select(i => new ServiceSpec(IPAddress.Parse(RuleFiles.Vip(i)), (ushort)RuleFiles.Port(i), L4Protocol.Udp,
                    [new BackendSpec(IPAddress.Parse(RuleFiles.Backend(i, 0)), 5000)]) { Mode = ServiceMode.Dnat, MaglevTableSize = 251 }));
                programmer.ApplyAll(services);
                sluice.AttachAll(["lbg", "lbs"]);
            });
            Measure(others == 0 ? "Sluice (XDP, dnat)" : $"Sluice (XDP, dnat), {others + 1:N0} services", Vip);
            lab.ClearBalancer();
        }

        // The kernel: XDP_PASS on the way in (XDP_TX from the generator needs a program there).
        lab.BalancerThread.Run(() => lab.Bench.AttachProgram("bench_pass", "lbg"));
        Measure("kernel forwarding (no NAT)", SinkAddress);
        foreach (var others in otherServices)
        {
            var rules = RuleFiles.Iptables(others, 10).Replace("COMMIT\n",
                $"-A KUBE-SERVICES -d {Vip}/32 -p udp -m udp --dport 5000 -j DNAT --to-destination {SinkAddress}:5000\nCOMMIT\n");
            Load(lab, "iptables-restore", rules);
            Measure($"iptables DNAT, {others:N0} other services ahead", Vip);
            Command.InNamespace(lab.Balancer.Name, "iptables", "-t", "nat", "-F");
            Command.InNamespace(lab.Balancer.Name, "iptables", "-t", "nat", "-X");
            Command.InNamespace(lab.Balancer.Name, "conntrack", "-F");
        }
        Load(lab, "nft", $"table ip rate {{\n  chain pre {{\n    type nat hook prerouting priority dstnat; policy accept;\n    ip daddr {Vip} udp dport 5000 dnat to {SinkAddress}:5000\n  }}\n}}\n", "-f");
        Measure("nftables DNAT", Vip);
        Command.InNamespace(lab.Balancer.Name, "nft", "delete", "table", "ip", "rate");
        var mapSize = otherServices[^1];
        var elements = string.Join(", ", Enumerable.Range(0, mapSize).Select(s => $"{RuleFiles.Vip(s)} . {RuleFiles.Port(s)} : jump other"));
        Load(lab, "nft", $"table ip ratemap {{\n  chain other {{\n    dnat to 198.18.31.9\n  }}\n  chain ours {{\n    udp dport 5000 dnat to {SinkAddress}:5000\n  }}\n" +
            $"  map services {{\n    type ipv4_addr . inet_service : verdict\n    elements = {{ {(mapSize > 0 ? elements + ", " : "")}{Vip} . 5000 : jump ours }}\n  }}\n" +
            "  chain pre {\n    type nat hook prerouting priority dstnat; policy accept;\n    ip daddr . udp dport vmap @services\n  }\n}\n", "-f");
        Measure($"nftables map, {mapSize:N0} other services", Vip);
        lab.ClearBalancer();

        return new PartResult("packet-rate", started, quick, measurements,
        [
            $"64-byte UDP frames from a live-frames generator (BPF_PROG_TEST_RUN, XDP_TX on g0), counted by an XDP sink behind the balancer; {seconds:F1} s per figure",
            "\"new flow per packet\": a new client address and port every frame (the generator rewrites them, IPv4 checksum kept valid; UDP checksum 0)",
            "the generator, the balancer and the sink share the machine's two cores: the ceiling is the generator's own rate",
            "Sluice's connection tables hold 4,194,304 connections, so a new-flow run never fills them (a full table would refuse, not evict); sustained over time, new connections are bounded by the sweeper's deletions (part 6)",
        ]);
    }

    private static double Rate(RateLab lab, IPAddress destination, bool vary, double seconds)
    {
        var frame = PacketBuilder.Build(new PacketSpec
        {
            SourceMac = Mac(RateLab.GeneratorMac),
            DestinationMac = Mac(RateLab.BalancerInMac),
            Source = IPAddress.Parse("198.19.30.2"),
            Destination = destination,
            Protocol = PacketBuilder.Udp,
            SourcePort = 40000,
            DestinationPort = 5000,
            UdpNoChecksum = true,
            Payload = new byte[22],
        });
        SetFrame(lab, frame, vary);
        var before = lab.Sunk();
        var watch = Stopwatch.StartNew();
        lab.GeneratorThread.Run(() =>
        {
            while (watch.Elapsed.TotalSeconds < seconds) // bounded in time
            {
                ProgramTestRun.RunLive(lab.Bench.FindProgramFd("bench_restore_tx"), frame, lab.GeneratorIfindex, repeat: 1 << 16);
            }
        });
        var elapsed = watch.Elapsed.TotalSeconds;
        Thread.Sleep(50); // let the last batch drain
        return (lab.Sunk() - before) / elapsed;
    }

    private static unsafe void SetFrame(RateLab lab, byte[] frame, bool vary)
    {
        lab.Frame.TryLookup(0, out var value);
        for (var i = 0; i < 64; i++)
        {
            value.Bytes[i] = frame[i];
        }
        value.VarySourcePort = vary ? 1u : 0u;
        lab.Frame.Update(0, value);
    }

    private static unsafe void SetForward(RateLab lab, uint egress)
    {
        lab.Frame.TryLookup(0, out var value);
        value.ForwardIfindex = egress;
        var (dmac, smac) = (Mac(RateLab.SinkMac), Mac(RateLab.BalancerOutMac));
        for (var i = 0; i < 6; i++)
        {
            value.ForwardDestinationMac[i] = dmac[i];
            value.ForwardSourceMac[i] = smac[i];
        }
        lab.Frame.Update(0, value);
    }

    private static void Load(RateLab lab, string tool, string input, params string[] arguments)
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, input, Encoding.ASCII);
            Command.Run("ip", ["netns", "exec", lab.Balancer.Name, tool, .. arguments, file]);
        }
        finally
        {
            File.Delete(file);
        }
    }

    private static byte[] Mac(string text) => text.Split(':').Select(b => Convert.ToByte(b, 16)).ToArray();
}
