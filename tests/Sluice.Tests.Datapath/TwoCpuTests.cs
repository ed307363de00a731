using System.Net;
using System.Runtime.InteropServices;
using Sluice.Datapath.Abi;
using Sluice.Datapath.Connections;
using Sluice.Datapath.Loading;
using Sluice.Datapath.Programming;
using Sluice.Datapath.Testing;
using Sluice.Testing;
using Sluice.Testing.Packets;

namespace Sluice.Tests.Datapath;

/// <summary>
/// Item 3: two CPUs running the program at once (two threads pinned to different CPUs,
/// each calling BPF_PROG_TEST_RUN) must never give two connections one SNAT port, and two
/// CPUs opening the same connection must end with one connection, not a leaked port.
/// </summary>
public sealed partial class TwoCpuTests
{
    private static readonly IPAddress Vip = IPAddress.Parse("198.18.100.1");

    [LibraryImport("libc", EntryPoint = "sched_setaffinity", SetLastError = true)]
    private static partial int SetAffinity(int pid, nint size, ref ulong mask);

    private static NamespaceThread PinnedThread(DatapathEnvironment env, int cpu)
    {
        var thread = new NamespaceThread(env.NamespaceName);
        thread.Run(() =>
        {
            var mask = 1UL << cpu;
            Assert.Equal(0, SetAffinity(0, sizeof(ulong), ref mask));
        });
        return thread;
    }

    /// <summary>
    /// Round by round, CPUs 0 and 1 run the program on the same frame at the same moment
    /// (a barrier before each run); <paramref name="record"/> gets (cpu, round, result).
    /// </summary>
    private static void RaceOnTwoCpus(DatapathEnvironment env, int rounds, Func<int, byte[]> frame, Action<int, int, TestRunResult>? record = null)
    {
        using var cpu0 = PinnedThread(env, 0);
        using var cpu1 = PinnedThread(env, 1);
        using var barrier = new Barrier(2);
        void Run(NamespaceThread cpu, int side) => cpu.Run(() =>
        {
            for (var i = 0; i < rounds; i++)
            {
                var bytes = frame(i);
                barrier.SignalAndWait();
                var result = ProgramTestRun.Run(env.Datapath.ProgramFd, bytes, env.Ifindex["cl0"]);
                record?.Invoke(side, i, result);
            }
        });
        Task.WaitAll(Task.Run(() => Run(cpu0, 0)), Task.Run(() => Run(cpu1, 1)));
    }

    private static DatapathEnvironment Environment(ushort portMax) => new(new DatapathOptions
    {
        MaxServices = 16, MaxBackends = 64, FlowTableSize = 65536, SnatPortMin = 40000, SnatPortMax = portMax, SnatProbes = 32, FlowHashSeed = 7,
    });

    private static byte[] Datagram(IPAddress client, ushort port) => PacketBuilder.Build(new PacketSpec
    {
        SourceMac = DatapathEnvironment.ClientMac, DestinationMac = DatapathEnvironment.Cl0Mac,
        Source = client, Destination = Vip, Protocol = PacketBuilder.Udp, SourcePort = port, DestinationPort = 5000,
    });

    [RootFact]
    public void NoTwoLiveConnectionsShareAnSnatPortWhileTwoCpusOpenAndTheSweeperFrees()
    {
        Assert.True(System.Environment.ProcessorCount >= 2, "needs two CPUs");
        using var env = Environment(40015); // 16 ports for everything
        env.Apply(new ServiceSpec(Vip, 5000, L4Protocol.Udp, [new BackendSpec(IPAddress.Parse("198.18.2.10"), 5000)]));
        using var cpu0 = PinnedThread(env, 0);
        using var cpu1 = PinnedThread(env, 1);
        var sweeper = env.Thread.Run(() => new ConnectionSweeper(env.Datapath, new ConnectionTimeouts { Udp = TimeSpan.FromSeconds(1) }));
        var stop = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        var forwarded = 0;

        void Open(NamespaceThread cpu, byte network) => cpu.Run(() =>
        {
            // Until the deadline (each sweep waits for a grace period): a new client every datagram.
            for (var i = 0; i < 2_000_000 && DateTime.UtcNow < stop; i++)
            {
                var client = new IPAddress([198, 19, network, (byte)(1 + i % 250)]);
                var result = ProgramTestRun.Run(env.Datapath.ProgramFd, Datagram(client, (ushort)(10000 + i / 250 % 50000)), env.Ifindex["cl0"]);
                if (result.Action == XdpAction.Redirect)
                {
                    Interlocked.Increment(ref forwarded);
                }
            }
        });

        var opening = new[] { Task.Run(() => Open(cpu0, 2)), Task.Run(() => Open(cpu1, 3)) };
        while (!Task.WhenAll(opening).IsCompleted)
        {
            // Everything is expired a minute from now: the sweeper frees ports under the CPUs' feet.
            env.Thread.Run(() => sweeper.Sweep(ConnectionTable.NowNs() + 60_000_000_000));
            AssertOneConnectionPerPort(env);
        }
        Task.WaitAll(opening);
        AssertOneConnectionPerPort(env);
        Assert.True(forwarded > 100, $"only {forwarded} datagrams were forwarded: the test proves nothing");
    }

    private static void AssertOneConnectionPerPort(DatapathEnvironment env)
    {
        var snapshot = env.Thread.Run(() => ConnectionTable.Read(env.Datapath.Flows, env.Datapath.Nat));
        var bindings = snapshot.Connections.Select(c => (c.Forward.SnatAddress, c.Forward.SnatPort, c.Forward.BackendId)).ToList();
        Assert.Equal(bindings.Count, bindings.Distinct().Count());
        foreach (var connection in snapshot.Connections.Where(c => c.Reverse is { } r))
        {
            // The reverse half under the port names this connection's client, nobody else's.
            Assert.Equal(connection.Client, Connection.ClientKeyOf(connection.ReplyKey, connection.Reverse!.Value));
        }
    }

    [RootFact]
    public void TwoCpusReplacingOneClosedConnectionLeaveOneConnectionAndAnExactBudget()
    {
        Assert.True(System.Environment.ProcessorCount >= 2, "needs two CPUs");
        using var env = Environment(65000);
        env.Apply(new ServiceSpec(Vip, 80, L4Protocol.Tcp, [new BackendSpec(IPAddress.Parse("198.18.2.10"), 8080)]));
        const int rounds = 1000;
        byte[] Segment(int i, byte flags) => PacketBuilder.Build(new PacketSpec
        {
            SourceMac = DatapathEnvironment.ClientMac, DestinationMac = DatapathEnvironment.Cl0Mac,
            Source = new IPAddress([198, 19, (byte)(2 + i / 250), (byte)(1 + i % 250)]), Destination = Vip,
            SourcePort = 20000, DestinationPort = 80, TcpFlags = flags, TcpSequence = (uint)(5000 + i),
        });
        foreach (var i in Enumerable.Range(0, rounds))
        {
            env.Send(Segment(i, 0x02), "cl0"); // opened...
            env.Send(Segment(i, 0x04), "cl0"); // ...and reset: closed, its next SYN replaces it
        }

        RaceOnTwoCpus(env, rounds, i => Segment(i, 0x02)); // both reopen it at once

        // One connection per client, each reopened once; only the closed ones' reverse halves
        // are orphans (a CPU that lost the replace claimed no port), and the budget counts
        // exactly the unproven connections.
        var snapshot = env.Thread.Run(() => ConnectionTable.Read(env.Datapath.Flows, env.Datapath.Nat));
        Assert.Equal(rounds, snapshot.Connections.Count);
        Assert.All(snapshot.Connections, c => Assert.NotNull(c.Reverse));
        Assert.Equal(rounds, snapshot.OrphanReverseHalves.Count);
        var sweeper = env.Thread.Run(() => new ConnectionSweeper(env.Datapath, new ConnectionTimeouts()));
        Assert.Equal((long)rounds, env.Thread.Run(sweeper.HandshakesInProgress));
        Console.WriteLine($"replaced: {env.Counter(DatapathCounter.FlowReplaced)}, lost the replace: {env.Drops(DropReason.FlowInsertFailed)}");
    }

    [RootFact]
    public void TwoCpusOpeningTheSameConnectionEndWithOneConnectionAndOnePort()
    {
        Assert.True(System.Environment.ProcessorCount >= 2, "needs two CPUs");
        using var env = Environment(65000);
        env.Apply(new ServiceSpec(Vip, 5000, L4Protocol.Udp, [new BackendSpec(IPAddress.Parse("198.18.2.10"), 5000)]));
        const int rounds = 2000;
        var ports = new ushort[2, rounds];
        RaceOnTwoCpus(env, rounds, i => Datagram(new IPAddress([198, 19, (byte)(2 + i / 250), (byte)(1 + i % 250)]), 20000), (side, i, result) =>
        {
            Assert.Equal(XdpAction.Redirect, result.Action);
            ports[side, i] = WireView.Of(result.Output).SourcePort;
        });
        for (var i = 0; i < rounds; i++)
        {
            Assert.Equal(ports[0, i], ports[1, i]); // the loser used the winner's binding
        }
        var snapshot = env.Thread.Run(() => ConnectionTable.Read(env.Datapath.Flows, env.Datapath.Nat));
        Assert.Equal(rounds, snapshot.Connections.Count);
        Assert.Empty(snapshot.OrphanReverseHalves); // no leaked port
        Assert.All(snapshot.Connections, c => Assert.NotNull(c.Reverse));
        Console.WriteLine($"races adopted: {env.Counter(DatapathCounter.FlowRaceAdopted)} of {rounds}");
    }
}
