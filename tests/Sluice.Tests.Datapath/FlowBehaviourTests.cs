using System.Net;
using Sluice.Datapath.Abi;
using Sluice.Datapath.Connections;
using Sluice.Datapath.Loading;
using Sluice.Datapath.Maglev;
using Sluice.Datapath.Programming;
using Sluice.Datapath.Testing;
using Sluice.Testing;
using Sluice.Testing.Packets;

namespace Sluice.Tests.Datapath;

/// <summary>Behaviour over many packets and programming changes, each test with its own datapath.</summary>
public sealed class FlowBehaviourTests
{
    private static readonly IPAddress Vip = IPAddress.Parse("198.18.100.1");

    private static ServiceSpec Web(params string[] backends) => new(
        Vip, 80, L4Protocol.Tcp, backends.Select(b => new BackendSpec(IPAddress.Parse(b), 8080)).ToList());

    private static PacketSpec Syn(int client, ushort port) => new()
    {
        SourceMac = DatapathEnvironment.ClientMac,
        DestinationMac = DatapathEnvironment.Cl0Mac,
        Source = IPAddress.Parse($"198.19.1.{10 + (client % 30)}"),
        Destination = Vip,
        SourcePort = port,
        DestinationPort = 80,
    };

    private static IPAddress BackendOf(TestRunResult result)
    {
        var ip = FrameChecks.Ipv4Offset(result.Output);
        return new IPAddress(result.Output.AsSpan(ip + 16, 4));
    }

    [RootFact]
    public void ThePickedBackendIsTheOneTheCSharpMaglevTablePredicts()
    {
        using var env = new DatapathEnvironment();
        var spec = Web("198.18.2.10", "198.18.2.11", "198.18.2.12", "198.18.2.13", "198.18.2.14");
        var programmed = env.Apply(spec);

        // The table in the kernel is the one C# builds from the names alone.
        var built = MaglevTable.Build(spec.Backends.Select(b => new MaglevBackend(b.Name)).ToList(), MaglevTableSizes.For(5), env.Options.FlowHashSeed);
        var expectedIds = built.Select(i => programmed.BackendIds[spec.Backends[i].Name]).ToArray();
        Assert.Equal(expectedIds, env.Thread.Run(() => env.Programmer.ReadMaglevTable(spec.Key)));

        for (var flow = 0; flow < 300; flow++)
        {
            var syn = Syn(flow, (ushort)(30000 + flow));
            var result = env.Send(PacketBuilder.Build(syn), "cl0");
            Assert.Equal(XdpAction.Redirect, result.Action);
            Assert.Equal(BalancerModel.PickBackend(spec, syn, env.Options.FlowHashSeed).Address, BackendOf(result));
        }
    }

    [RootFact]
    public void AnEstablishedFlowKeepsItsBackendWhenTheBackendSetChanges()
    {
        using var env = new DatapathEnvironment();
        var before = Web("198.18.2.10", "198.18.2.11", "198.18.2.12");
        env.Apply(before);
        var flows = Enumerable.Range(0, 200).Select(i => Syn(i, (ushort)(31000 + i))).ToList();
        var chosen = flows.Select(f => BackendOf(env.Send(PacketBuilder.Build(f), "cl0"))).ToList();

        // Adding two backends reshuffles part of the table...
        var after = Web("198.18.2.10", "198.18.2.11", "198.18.2.12", "198.18.2.13", "198.18.2.14");
        env.Apply(after);
        var moved = flows.Count(f => !BalancerModel.PickBackend(after, f, env.Options.FlowHashSeed).Address
            .Equals(BalancerModel.PickBackend(before, f, env.Options.FlowHashSeed).Address));
        Assert.True(moved > 20, $"the change should move many table slots (moved {moved}), or this test proves nothing");

        // ...but every existing flow stays where it was.
        for (var i = 0; i < flows.Count; i++)
        {
            var next = flows[i] with { TcpFlags = 0x10 };
            Assert.Equal(chosen[i], BackendOf(env.Send(PacketBuilder.Build(next), "cl0")));
        }
    }

    [RootFact]
    public void FlowsOfARemovedBackendAreDroppedUntilReopenedAndOthersStay()
    {
        using var env = new DatapathEnvironment();
        env.Apply(Web("198.18.2.10", "198.18.2.11", "198.18.2.12"));
        var flows = Enumerable.Range(0, 150).Select(i => Syn(i, (ushort)(32000 + i))).ToList();
        var chosen = flows.Select(f => BackendOf(env.Send(PacketBuilder.Build(f), "cl0"))).ToList();
        var removed = IPAddress.Parse("198.18.2.11");
        var lost = chosen.Count(c => c.Equals(removed));
        Assert.True(lost > 0);

        var staleBefore = env.Drops(DropReason.StaleConnection);
        env.Apply(Web("198.18.2.10", "198.18.2.12"));
        for (var i = 0; i < flows.Count; i++)
        {
            var ack = env.Send(PacketBuilder.Build(flows[i] with { TcpFlags = 0x10 }), "cl0");
            if (chosen[i].Equals(removed))
            {
                // Its connection cannot move (the new backend knows nothing of it): dropped,
                // and a new connection on the same client port is balanced anew.
                Assert.Equal(XdpAction.Drop, ack.Action);
                Assert.NotEqual(removed, BackendOf(env.Send(PacketBuilder.Build(flows[i]), "cl0")));
            }
            else
            {
                Assert.Equal(chosen[i], BackendOf(ack));
            }
        }
        Assert.Equal((ulong)lost, env.Drops(DropReason.StaleConnection) - staleBefore);
    }

    [RootFact]
    public void ADrainingBackendKeepsItsFlowsAndGetsNoNewOnes()
    {
        using var env = new DatapathEnvironment();
        var web = Web("198.18.2.10", "198.18.2.11");
        env.Apply(web);
        var flows = Enumerable.Range(0, 100).Select(i => Syn(i, (ushort)(33000 + i))).ToList();
        var chosen = flows.Select(f => BackendOf(env.Send(PacketBuilder.Build(f), "cl0"))).ToList();
        var draining = IPAddress.Parse("198.18.2.10");

        env.Apply(web with { Backends = [web.Backends[0] with { State = BackendState.Draining }, web.Backends[1]] });
        for (var i = 0; i < flows.Count; i++)
        {
            Assert.Equal(chosen[i], BackendOf(env.Send(PacketBuilder.Build(flows[i] with { TcpFlags = 0x10 }), "cl0")));
        }
        for (var i = 0; i < 100; i++)
        {
            Assert.NotEqual(draining, BackendOf(env.Send(PacketBuilder.Build(Syn(i, (ushort)(34000 + i))), "cl0")));
        }
    }

    [RootFact]
    public void SnatPortExhaustionIsDroppedAndCounted()
    {
        // Two SNAT ports for everything: two flows fit, a third cannot.
        using var env = new DatapathEnvironment(new DatapathOptions
        {
            MaxServices = 16, MaxBackends = 64, FlowTableSize = 1024, SnatPortMin = 40000, SnatPortMax = 40001, SnatProbes = 2,
        });
        env.Apply(Web("198.18.2.10"));
        var first = env.Send(PacketBuilder.Build(Syn(0, 35000)), "cl0");
        var second = env.Send(PacketBuilder.Build(Syn(1, 35001)), "cl0");
        Assert.Equal(XdpAction.Redirect, first.Action);
        Assert.Equal(XdpAction.Redirect, second.Action);

        var dropsBefore = env.Drops(DropReason.SnatExhausted);
        var third = env.Send(PacketBuilder.Build(Syn(2, 35002)), "cl0");
        Assert.Equal(XdpAction.Drop, third.Action);
        Assert.Equal(dropsBefore + 1, env.Drops(DropReason.SnatExhausted));

        // The two admitted flows hold distinct ports of the range and keep working.
        var ports = env.Thread.Run(() => env.Datapath.Flows.Entries().Select(e => e.Value.SnatPort.ToHost()).Order().ToArray());
        Assert.Equal(new ushort[] { 40000, 40001 }, ports);
        Assert.Equal(XdpAction.Redirect, env.Send(PacketBuilder.Build(Syn(0, 35000) with { TcpFlags = 0x10 }), "cl0").Action);
    }

    [RootFact]
    public void FullNatWithNoSnatAddressIsDroppedAndCounted()
    {
        using var env = new DatapathEnvironment();
        env.Apply(Web("198.18.2.10"));
        env.Thread.Run(() => env.Programmer.SetSnatAddresses([]));
        var before = env.Drops(DropReason.NoSnatAddress);
        Assert.Equal(XdpAction.Drop, env.Send(PacketBuilder.Build(Syn(0, 36000)), "cl0").Action);
        Assert.Equal(before + 1, env.Drops(DropReason.NoSnatAddress));
    }

    [RootFact]
    public void ServiceAndBackendCountersCountExactlyTheTraffic()
    {
        using var env = new DatapathEnvironment();
        var programmed = env.Apply(Web("198.18.2.10", "198.18.2.11"));
        var frames = Enumerable.Range(0, 40).Select(i => PacketBuilder.Build(Syn(i % 10, (ushort)(37000 + (i % 10))))).ToList();
        var bytes = 0UL;
        foreach (var frame in frames)
        {
            env.Send(frame, "cl0");
            bytes += (ulong)frame.Length;
        }
        var service = env.Thread.Run(() => env.Programmer.ServiceCounters(programmed.Id));
        Assert.Equal(40UL, service.Packets);
        Assert.Equal(bytes, service.Bytes);
        Assert.Equal(10UL, service.NewFlows); // 10 distinct (client, port) tuples
        var perBackend = env.Thread.Run(() => programmed.BackendIds.Values.Select(id => env.Programmer.BackendCounters(id)).ToList());
        Assert.Equal(40UL, perBackend.Aggregate(0UL, (sum, c) => sum + c.Packets));
        Assert.Equal(10UL, perBackend.Aggregate(0UL, (sum, c) => sum + c.NewFlows));
    }

    [RootFact]
    public void RemovingAServiceStopsItAndKeepsItsVipForOthers()
    {
        using var env = new DatapathEnvironment();
        var web = Web("198.18.2.10");
        var dns = new ServiceSpec(Vip, 53, L4Protocol.Udp, [new BackendSpec(IPAddress.Parse("198.18.2.13"), 53)]) { Mode = ServiceMode.Dnat };
        env.Apply(web);
        env.Apply(dns);
        env.Thread.Run(() => env.Programmer.Remove(web.Key));
        var before = env.Drops(DropReason.NoService);
        Assert.Equal(XdpAction.Drop, env.Send(PacketBuilder.Build(Syn(0, 38000)), "cl0").Action);
        Assert.Equal(before + 1, env.Drops(DropReason.NoService));

        env.Thread.Run(() => env.Programmer.Remove(dns.Key));
        var frame = PacketBuilder.Build(Syn(0, 38001));
        var result = env.Send(frame, "cl0");
        Assert.Equal(XdpAction.Pass, result.Action); // no longer a VIP at all
        Assert.Equal(frame, result.Output);
    }

    private static Tuple5 KeyOf(PacketSpec packet) => new(
        Be32.From(packet.Source), Be32.From(packet.Destination), Be16.FromHost(packet.SourcePort), Be16.FromHost(packet.DestinationPort), PacketBuilder.Tcp);

    private static FlowEntry FlowOf(DatapathEnvironment env, PacketSpec packet) =>
        env.Thread.Run(() => env.Datapath.Flows.TryLookup(KeyOf(packet), out var flow) ? flow : throw new Xunit.Sdk.XunitException("no flow entry"));

    [RootFact]
    public void AConnectionRecordsItsHandshakeAndAFinFromTheBackendHalfClosesIt()
    {
        using var env = new DatapathEnvironment();
        env.Apply(Web("198.18.2.10"));
        var syn = Syn(0, 39000);
        var c = new Conversation(env, syn.Source, syn.SourcePort, Vip, 80);
        Assert.Equal(XdpAction.Redirect, c.Send(Conversation.Tcp.Syn).Action);
        var created = FlowOf(env, syn);
        Assert.Equal(ConnectionFlags.None, created.Flags);
        Assert.True(created.CreatedNs > 0);
        Assert.Equal(created.CreatedNs, created.LastSeenNs);

        // An ACK that does not acknowledge the backend's SYN-ACK proves nothing and stores nothing.
        Assert.Equal(XdpAction.Redirect, c.Send(Conversation.Tcp.Ack, 12345).Action);
        Assert.Equal(created, FlowOf(env, syn));

        // The backend's SYN-ACK, then the client's ACK of it: established, in both halves.
        Assert.True(c.IsForMe(c.Reply(Conversation.Tcp.Syn | Conversation.Tcp.Ack)));
        Assert.Equal(XdpAction.Redirect, c.Send(Conversation.Tcp.Ack, Conversation.BackendIsn + 1).Action);
        Assert.Equal(ConnectionFlags.Established, FlowOf(env, syn).Flags);

        // The backend's FIN comes back through the reverse half: half-closed, not closed.
        Assert.True(c.IsForMe(c.Reply(Conversation.Tcp.Fin | Conversation.Tcp.Ack)));
        Assert.Equal(ConnectionFlags.Established | ConnectionFlags.BackendFin, FlowOf(env, syn).Flags);
        var nat = env.Thread.Run(() => env.Datapath.Nat.Entries().Single().Value);
        Assert.Equal(ConnectionFlags.Established | ConnectionFlags.BackendFin | ConnectionFlags.Replied, nat.Flags);
        Assert.Equal(0UL, FlowOf(env, syn).ClosedNs);

        // The client's FIN closes it; both halves know (the forward half when).
        Assert.Equal(XdpAction.Redirect, c.Send(Conversation.Tcp.Fin | Conversation.Tcp.Ack, Conversation.BackendIsn + 2).Action);
        Assert.NotEqual(0UL, FlowOf(env, syn).ClosedNs);
        Assert.Equal(ConnectionState.Closed, Connection.StateOf(6, env.Thread.Run(() => env.Datapath.Nat.Entries().Single().Value).Flags));
    }

    [RootFact]
    public void AClientRstClosesTheFlowAndABareSynOnItIsBalancedAnew()
    {
        using var env = new DatapathEnvironment();
        var web = Web("198.18.2.10", "198.18.2.11");
        env.Apply(web);
        var flows = Enumerable.Range(0, 40).Select(i => Syn(i, (ushort)(39100 + i))).ToList();
        var chosen = flows.Select(f => BackendOf(env.Send(PacketBuilder.Build(f), "cl0"))).ToList();
        var draining = IPAddress.Parse("198.18.2.10");
        Assert.Contains(draining, chosen);
        foreach (var flow in flows)
        {
            env.Send(PacketBuilder.Build(flow with { TcpFlags = 0x14 }), "cl0"); // RST|ACK from the client
            Assert.Equal(ConnectionFlags.Reset, FlowOf(env, flow).Flags);
        }

        env.Apply(web with { Backends = [web.Backends[0] with { State = BackendState.Draining }, web.Backends[1]] });
        var reopenedBefore = env.Counter(DatapathCounter.FlowReplaced);
        for (var i = 0; i < flows.Count; i++)
        {
            // Late segments of the old connection still reach its backend...
            Assert.Equal(chosen[i], BackendOf(env.Send(PacketBuilder.Build(flows[i] with { TcpFlags = 0x10 }), "cl0")));
            // ...but a new connection on the same client port is balanced afresh, away from the draining one.
            Assert.NotEqual(draining, BackendOf(env.Send(PacketBuilder.Build(flows[i]), "cl0")));
            Assert.Equal(ConnectionFlags.None, FlowOf(env, flows[i]).Flags);
        }
        Assert.Equal((ulong)flows.Count, env.Counter(DatapathCounter.FlowReplaced) - reopenedBefore);
    }

    [RootFact]
    public void ADownBackendsFlowsAreRehashedWhileItKeepsItsIdAndCounters()
    {
        using var env = new DatapathEnvironment();
        var web = Web("198.18.2.10", "198.18.2.11", "198.18.2.12");
        var programmed = env.Apply(web);
        var flows = Enumerable.Range(0, 90).Select(i => Syn(i, (ushort)(39300 + i))).ToList();
        var chosen = flows.Select(f => BackendOf(env.Send(PacketBuilder.Build(f), "cl0"))).ToList();
        var dead = IPAddress.Parse("198.18.2.11");
        var deadId = programmed.BackendIds["198.18.2.11:8080"];
        var countersBefore = env.Thread.Run(() => env.Programmer.BackendCounters(deadId));
        Assert.True(countersBefore.Packets > 0);

        var down = env.Apply(web with { Backends = [web.Backends[0], web.Backends[1] with { State = BackendState.Down }, web.Backends[2]] });
        Assert.Equal(deadId, down.BackendIds["198.18.2.11:8080"]);
        for (var i = 0; i < flows.Count; i++)
        {
            var backend = BackendOf(env.Send(PacketBuilder.Build(flows[i] with { TcpFlags = 0x10 }), "cl0"));
            Assert.NotEqual(dead, backend);
            if (!chosen[i].Equals(dead))
            {
                Assert.Equal(chosen[i], backend);
            }
        }
        Assert.Equal(countersBefore, env.Thread.Run(() => env.Programmer.BackendCounters(deadId)));

        // Up again: same id, back in the table, its counters carry on.
        var up = env.Apply(web);
        Assert.Equal(deadId, up.BackendIds["198.18.2.11:8080"]);
        var fresh = Enumerable.Range(0, 90).Select(i => BackendOf(env.Send(PacketBuilder.Build(Syn(i, (ushort)(39400 + i))), "cl0"))).ToList();
        Assert.Contains(dead, fresh);
        Assert.True(env.Thread.Run(() => env.Programmer.BackendCounters(deadId)).Packets > countersBefore.Packets);
    }

    [RootFact]
    public async Task ABackendsNewMacReachesItsEstablishedFlowsOnceTheCachedNextHopExpires()
    {
        using var env = new DatapathEnvironment();
        env.Apply(Web("198.18.2.10"));
        var ack = Syn(0, 39500) with { TcpFlags = 0x10 };
        env.Send(PacketBuilder.Build(Syn(0, 39500)), "cl0");
        byte[] DestinationMac() => env.Send(PacketBuilder.Build(ack), "cl0").Output[..6];
        Assert.Equal(DatapathEnvironment.BackendMac, DestinationMac());

        // The FIB now says otherwise; the cached next hop is reused for at most about a second.
        byte[] moved = [0x02, 0, 0, 0, 0x02, 0xcc];
        Command.Run("ip", "-netns", env.NamespaceName, "neigh", "replace", "198.18.2.10", "lladdr", "02:00:00:00:02:cc", "dev", "be0", "nud", "permanent");
        await Poll.Until(() => DestinationMac().SequenceEqual(moved), "established packets follow the backend's new MAC", TimeSpan.FromSeconds(5));
    }

    [RootFact]
    public void AClosedConnectionsSnatPortIsFreeAgainAfterTheHoldAndNotBefore()
    {
        // One SNAT port for everything, so reuse is the only way a second connection gets in.
        using var env = new DatapathEnvironment(new DatapathOptions
        {
            MaxServices = 16, MaxBackends = 64, FlowTableSize = 1024, SnatPortMin = 40000, SnatPortMax = 40000, SnatProbes = 1, FlowHashSeed = 7,
        });
        env.Apply(Web("198.18.2.10"));
        var timeouts = new ConnectionTimeouts { TcpClosed = TimeSpan.FromSeconds(2) };
        var sweeper = env.Thread.Run(() => new ConnectionSweeper(env.Datapath, timeouts));
        var first = Syn(0, 39600);
        Assert.Equal(XdpAction.Redirect, env.Send(PacketBuilder.Build(first), "cl0").Action);
        Assert.Equal(XdpAction.Drop, env.Send(PacketBuilder.Build(Syn(1, 39601)), "cl0").Action); // exhausted while it is open

        env.Send(PacketBuilder.Build(first with { TcpFlags = 0x14 }), "cl0"); // the client resets it
        var closedAt = FlowOf(env, first).ClosedNs;
        Assert.NotEqual(0UL, closedAt);
        Assert.Equal(0, env.Thread.Run(() => sweeper.Sweep(closedAt + 1_000_000_000)).TotalExpired); // still held
        Assert.Equal(XdpAction.Drop, env.Send(PacketBuilder.Build(Syn(2, 39602)), "cl0").Action);

        var swept = env.Thread.Run(() => sweeper.Sweep(closedAt + 3_000_000_000));
        Assert.Equal(1, swept.Expired[ExpiryReason.Closed]);
        // Retired, not yet free: a late reply to it may still be on its way.
        Assert.Equal(XdpAction.Drop, env.Send(PacketBuilder.Build(Syn(3, 39603)), "cl0").Action);
        env.Thread.Run(() => sweeper.Sweep(closedAt + 3_000_000_000));
        Assert.Equal(XdpAction.Redirect, env.Send(PacketBuilder.Build(Syn(3, 39603)), "cl0").Action);
        var taken = env.Thread.Run(() => env.Datapath.Nat.Entries().Single().Value);
        Assert.Equal(39603, taken.DestinationPort.ToHost()); // the port now answers to the new client
    }

    [RootFact]
    public void SnatProbingFindsFreePortsWithHalfTheRangeTaken()
    {
        // Double hashing with strides coprime with the range: with half of 4,096 ports held by
        // live connections, 16 probes always find a free one (linear probing let runs of
        // taken ports grow past the probe limit).
        using var env = new DatapathEnvironment(new DatapathOptions
        {
            MaxServices = 16, MaxBackends = 64, FlowTableSize = 8192, HandshakeLimit = 8192,
            SnatPortMin = 20000, SnatPortMax = 24095, SnatProbes = 16, FlowHashSeed = 7,
        });
        env.Apply(Web("198.18.2.10"));
        var dropped = 0;
        for (var i = 0; i < 2048; i++)
        {
            var syn = Syn(i % 30, (ushort)(10000 + (i / 30)));
            dropped += env.Send(PacketBuilder.Build(syn), "cl0").Action == XdpAction.Drop ? 1 : 0;
        }
        Assert.Equal(0, dropped);
        Assert.Equal(2048, env.Thread.Run(() => env.Datapath.Nat.ReadAll().Select(e => e.Key.DestinationPort).Distinct().Count()));
    }
}
