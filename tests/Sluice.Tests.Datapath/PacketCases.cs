using System.Net;
using Sluice.Datapath.Abi;
using Sluice.Datapath.Programming;
using Sluice.Datapath.Testing;
using Sluice.Testing.Packets;
using static Sluice.Tests.Datapath.DatapathEnvironment;
using static Sluice.Tests.Datapath.ProgrammedEnvironment;

namespace Sluice.Tests.Datapath;

/// <summary>
/// The table of packet cases. Each is built when it runs, against the environment,
/// because the expected backend and SNAT port come from <see cref="BalancerModel"/>.
/// </summary>
public static partial class PacketCases
{
    private static readonly IPAddress Client = IPAddress.Parse("198.19.1.10");
    private static readonly IPAddress OtherHost = IPAddress.Parse("198.18.2.10");

    private static readonly Lazy<IReadOnlyDictionary<string, Func<DatapathEnvironment, PacketCase>>> AllCases =
        new(() => Core!.Concat(VlanCases!).ToDictionary(c => c.Key, c => c.Value)); // runs after every field initializer

    /// <summary>Every case: the core table and the VLAN table (PacketCases.Vlans.cs).</summary>
    public static IReadOnlyDictionary<string, Func<DatapathEnvironment, PacketCase>> All => AllCases.Value;

    private static readonly Dictionary<string, Func<DatapathEnvironment, PacketCase>> Core = new()
    {
        // --- Not ours: passed byte-identical -------------------------------------
        ["arp passes untouched"] = env => Unchanged(Raw(ArpFrame()), DatapathCounter.PassNotIpv4),
        ["ipv6 passes untouched"] = env => Unchanged(Raw(Ipv6Frame()), DatapathCounter.PassNotIpv4),
        // The kernel delivers nothing shorter than an Ethernet header (nor does BPF_PROG_TEST_RUN).
        ["ethernet header alone passes untouched"] = env => Unchanged(Raw([0x02, 0, 0, 0, 0x01, 0x01, 0x02, 0, 0, 0, 0x01, 0xaa, 0x08, 0x00]), DatapathCounter.PassUnparsedIpv4),
        ["802.1Q tag cut short passes untouched"] = env => Unchanged(Raw([0x02, 0, 0, 0, 0x01, 0x01, 0x02, 0, 0, 0, 0x01, 0xaa, 0x81, 0x00, 0x00]), DatapathCounter.PassNotIpv4),
        ["ipv4 shorter than its header passes untouched"] = env => Unchanged(ToVip(env) with { TruncateTo = 14 + 12 }, DatapathCounter.PassUnparsedIpv4),
        ["tcp to a non-VIP passes untouched"] = env => Unchanged(ToVip(env) with { Destination = OtherHost }, DatapathCounter.PassNotService),
        ["udp to a non-VIP passes untouched"] = env => Unchanged(Udp(env, WebFullNat) with { Destination = OtherHost }, DatapathCounter.PassNotService),
        ["icmp to a non-VIP passes untouched"] = env => Unchanged(ToVip(env) with { Protocol = PacketBuilder.Icmp, Destination = OtherHost }, DatapathCounter.PassNotService),
        ["fragment to a non-VIP passes untouched"] = env => Unchanged(ToVip(env) with { Destination = OtherHost, FlagsAndOffset = 0x2000 }, DatapathCounter.PassNotService),
        ["bad IHL to a non-VIP passes untouched"] = env => Unchanged(ToVip(env) with { Destination = OtherHost, IhlOverride = 4 }, DatapathCounter.PassNotService),
        ["802.1ad outer tag passes untouched"] = env => Unchanged(ToVip(env) with { VlanTags = [100], VlanEtherType = 0x88a8 }, DatapathCounter.PassNotIpv4),
        ["two 802.1Q tags pass untouched"] = env => Unchanged(ToVip(env) with { VlanTags = [100, 200] }, DatapathCounter.PassNotIpv4),
        ["reply with no NAT entry passes untouched"] = env => Unchanged(
            ToVip(env) with { Source = IPAddress.Parse("198.18.2.10"), SourcePort = 8080, Destination = SnatAddress, DestinationPort = 1 },
            DatapathCounter.PassNotService, "be0"),

        // --- Addressed to a VIP but not servable: dropped with a reason --------------
        ["VIP on a port with no service"] = env => Dropped(ToVip(env) with { DestinationPort = 81 }, DropReason.NoService),
        ["VIP port of a tcp service, sent as udp"] = env => Dropped(Udp(env, WebFullNat), DropReason.NoService),
        ["icmp other than echo to a VIP"] = env => Dropped(ToVip(env) with { Protocol = PacketBuilder.Icmp, IcmpType = 13 }, DropReason.UnsupportedProtocol),
        ["icmp echo to a VIP is answered from the VIP"] = env =>
        {
            var request = ToVip(env) with { Protocol = PacketBuilder.Icmp, Payload = "ping"u8.ToArray(), Ttl = 5 };
            var reply = request with
            {
                SourceMac = Cl0Mac, DestinationMac = ClientMac, Source = request.Destination, Destination = request.Source,
                IcmpType = 0, Ttl = 64,
            };
            return Case(new PacketStep(request, "cl0", XdpAction.Redirect, reply, Counter: DatapathCounter.EchoReplied));
        },
        ["icmp echo of zeros to a VIP is answered with checksum 0xffff"] = env =>
        {
            var request = ToVip(env) with { Protocol = PacketBuilder.Icmp, Payload = new byte[3] };
            var reply = request with { SourceMac = Cl0Mac, DestinationMac = ClientMac, Source = request.Destination, Destination = request.Source, IcmpType = 0, Ttl = 64 };
            return Case(new PacketStep(request, "cl0", XdpAction.Redirect, reply, Counter: DatapathCounter.EchoReplied));
        },
        ["bad IPv4 header checksum to a VIP"] = env => Dropped(ToVip(env) with { BadIpChecksum = true }, DropReason.IpChecksum),
        ["bad IPv4 header checksum on an echo request"] = env => Dropped(ToVip(env) with { Protocol = PacketBuilder.Icmp, BadIpChecksum = true }, DropReason.IpChecksum),
        ["IHL below 5 to a VIP"] = env => Dropped(ToVip(env) with { IhlOverride = 4 }, DropReason.IpHeaderInvalid),
        ["IP version 6 inside an IPv4 ethertype"] = env => Dropped(ToVip(env) with { IpVersionOverride = 6 }, DropReason.IpHeaderInvalid),
        ["total length beyond the frame"] = env => Dropped(ToVip(env) with { TotalLengthAdjust = 40 }, DropReason.IpLengthInvalid),
        ["total length below the header"] = env => Dropped(ToVip(env) with { TotalLengthAdjust = -30 }, DropReason.IpLengthInvalid),
        // Fragments: the first balanced, the following ones after it; one whose first was not seen dropped.
        ["a fragmented datagram to a VIP follows its first fragment (fullnat)"] = env => Fragmented(env, UdpFullNat),
        ["a fragmented datagram to a VIP follows its first fragment (dnat)"] = env => Fragmented(env, DnsDnat),
        ["two datagrams under one fragment key at once"] = env => AmbiguousFragments(env),
        ["non-first fragment to a VIP before its first"] = env => Dropped(ToVip(env) with { FlagsAndOffset = 0x0010, Identification = 0x7777 }, DropReason.Fragment),
        ["a fragmented echo request to a VIP"] = env => Dropped(ToVip(env) with { Protocol = PacketBuilder.Icmp, FlagsAndOffset = 0x2000 }, DropReason.Fragment),
        ["tcp header cut short"] = env => Dropped(ToVip(env) with { TruncateTo = 14 + 20 + 10 }, DropReason.IpLengthInvalid),
        ["tcp header beyond total length"] = env => Dropped(ToVip(env) with { TotalLengthAdjust = -10, TrailingPadding = 10 }, DropReason.L4Truncated),
        ["udp header beyond total length"] = env => Dropped(Udp(env, DnsDnat) with { TotalLengthAdjust = -4, TrailingPadding = 4 }, DropReason.L4Truncated),
        // The kernel answers Time Exceeded (RFC 1812 5.3.1): handed over untouched.
        ["ttl 1 to a VIP"] = env => Unchanged(ToVip(env) with { Ttl = 1 }, DatapathCounter.PassTtlExceeded),
        ["ttl 0 to a VIP"] = env => Unchanged(ToVip(env) with { Ttl = 0 }, DatapathCounter.PassTtlExceeded),
        ["service with no backends"] = env => Dropped(ToVip(env, Empty), DropReason.NoBackend),
        ["backend behind a blackhole route"] = env => Dropped(ToVip(env, Blackholed), DropReason.NoRoute),
        ["ingress with forwarding disabled"] = env => Dropped(ToVip(env), DropReason.ForwardingDisabled, "nf0"),
        // Too big for the backend's link: DF set, "fragmentation needed" back from the VIP quoting
        // the packet as sent (RFC 1191); DF clear, handed to the kernel (rewritten) to fragment.
        ["rewritten packet above the egress MTU"] = env =>
        {
            var big = ToVip(env) with { Payload = new byte[1500] };
            var icmp = new PacketSpec
            {
                SourceMac = Cl0Mac, DestinationMac = ClientMac, Source = big.Destination, Destination = big.Source, Protocol = PacketBuilder.Icmp,
                IcmpType = 3, IcmpCode = 4, IcmpRest = 1500, Ttl = 64, Identification = 0, FlagsAndOffset = 0, Payload = PacketBuilder.Quote(big),
            };
            return Case(new PacketStep(big, "cl0", XdpAction.Redirect, icmp, Counter: DatapathCounter.FragNeededSent));
        },
        ["rewritten packet above the egress MTU without DF"] = env =>
            HandedToKernel(FullNatForward(env, ToVip(env) with { Payload = new byte[1500], FlagsAndOffset = 0 }), DatapathCounter.PassToFragment),
        ["fragmentation needed from the client's side reaches the backend (fullnat)"] = env => IcmpToBackend(env, WebFullNat),
        ["fragmentation needed from the client's side reaches the backend (dnat)"] = env => IcmpToBackend(env, StickyDnat),
        ["fragmentation needed about a udp reply reaches the backend, quoted checksum right (dnat)"] = env =>
            IcmpToBackend(env, DnsDnat, Udp(env, DnsDnat) with { Payload = [1, 2, 3] }),
        ["fragmentation needed from the backend's side reaches the client (fullnat)"] = env => IcmpToClient(env, WebFullNat),
        ["port unreachable from the backend's side reaches the client from the VIP (dnat)"] = env => IcmpToClient(env, StickyDnat, code: 3),
        ["fragmentation needed below 552 bytes is not passed on"] = env =>
        {
            var translated = IcmpToBackend(env, WebFullNat);
            var error = translated.Steps[2].Input with { IcmpRest = 68 };
            return new PacketCase("", [.. translated.Steps.Take(2), new PacketStep(error, "cl0", XdpAction.Drop, Drop: DropReason.UnsupportedProtocol)]);
        },
        ["an icmp error quoting a packet its destination did not send is not translated"] = env =>
        {
            var translated = IcmpToClient(env, WebFullNat);
            var forged = translated.Steps[1].Input with { Destination = IPAddress.Parse("198.18.2.99") };
            return new PacketCase("", [translated.Steps[0], new PacketStep(forged, "be0", XdpAction.Pass, Counter: DatapathCounter.PassNotService)]);
        },
        ["icmp error to a VIP about no connection"] = env => Dropped(ToVip(env) with
        {
            Source = IPAddress.Parse("198.19.1.1"), Protocol = PacketBuilder.Icmp, IcmpType = 3, IcmpCode = 4, IcmpRest = 1400,
            Payload = PacketBuilder.Quote(ToVip(env) with { Source = ToVip(env).Destination, SourcePort = 80, Destination = Client, DestinationPort = 4242 }),
        }, DropReason.NoConnection),

        // --- Balanced: rewritten and forwarded --------------------------------------
        ["fullnat tcp syn to a backend"] = env => Case(FullNatForward(env, ToVip(env))),
        ["fullnat tcp with payload"] = env =>
        {
            var syn = ToVip(env);
            var first = FullNatForward(env, syn);
            var dataIn = syn with { TcpFlags = 0x18, TcpSequence = 1001, Payload = "GET / HTTP/1.0\r\n\r\n"u8.ToArray() };
            var data = new PacketStep(dataIn, "cl0", XdpAction.Redirect,
                first.Expected! with { TcpFlags = 0x18, TcpSequence = 1001, Payload = dataIn.Payload }, Counter: DatapathCounter.FlowHit);
            return new PacketCase("", [first, data]);
        },
        // Tx checksum offload (veth, containers): a partial checksum in, a complete one out.
        ["fullnat tcp syn with a partial checksum"] = env => Case(FullNatForward(env, ToVip(env) with { PartialChecksum = true })),
        ["fullnat tcp, odd payload, partial checksum"] = env =>
        {
            var syn = ToVip(env);
            var first = FullNatForward(env, syn);
            var dataIn = syn with { TcpFlags = 0x18, TcpSequence = 1001, Payload = "GET /odd HTTP/1.0\r\n\r\n"u8.ToArray(), PartialChecksum = true };
            var data = new PacketStep(dataIn, "cl0", XdpAction.Redirect,
                first.Expected! with { TcpFlags = 0x18, TcpSequence = 1001, Payload = dataIn.Payload }, Counter: DatapathCounter.FlowHit);
            return new PacketCase("", [first, data]);
        },
        ["fullnat tcp, 1400-byte payload, partial checksum"] = env =>
        {
            var syn = ToVip(env);
            var first = FullNatForward(env, syn);
            var payload = Enumerable.Range(0, 1401).Select(i => (byte)(i * 7)).ToArray();
            var dataIn = syn with { TcpFlags = 0x18, TcpSequence = 1001, Payload = payload, PartialChecksum = true };
            var data = new PacketStep(dataIn, "cl0", XdpAction.Redirect,
                first.Expected! with { TcpFlags = 0x18, TcpSequence = 1001, Payload = payload }, Counter: DatapathCounter.FlowHit);
            return new PacketCase("", [first, data]);
        },
        ["fullnat udp with a partial checksum"] = env => Case(FullNatForward(env, Udp(env, UdpFullNat) with { Payload = [1, 2, 3], PartialChecksum = true }, UdpFullNat)),
        ["dnat udp with a partial checksum"] = env => Case(DnatForward(env, Udp(env, DnsDnat) with { Payload = [0xab, 0xcd, 0xef], PartialChecksum = true }, DnsDnat)),
        ["fullnat reply with a partial checksum"] = env => FullNatReply(env, reply => reply with { Payload = [5, 6, 7], PartialChecksum = true }),
        ["tcp ack with no connection (fullnat)"] = env => Dropped(ToVip(env) with { TcpFlags = 0x10 }, DropReason.NoConnection),
        ["tcp rst with no connection (dnat)"] = env => Dropped(ToVip(env, StickyDnat) with { TcpFlags = 0x04 }, DropReason.NoConnection),
        ["tcp syn+fin opens no connection"] = env => Dropped(ToVip(env) with { TcpFlags = 0x03 }, DropReason.NoConnection),
        ["fullnat udp"] = env => Case(FullNatForward(env, Udp(env, UdpFullNat) with { Payload = [1, 2, 3, 4, 5] }, UdpFullNat)),
        ["fullnat udp without checksum stays without"] = env => Case(FullNatForward(env, Udp(env, UdpFullNat) with { UdpNoChecksum = true, Payload = [9, 9] }, UdpFullNat)),
        ["fullnat second packet of a flow hits the flow"] = env =>
        {
            var syn = ToVip(env);
            var first = FullNatForward(env, syn);
            var ackIn = syn with { TcpFlags = 0x10, TcpSequence = 1001 };
            // The flow keeps the SNAT port its SYN was given.
            var ack = new PacketStep(ackIn, "cl0", XdpAction.Redirect, first.Expected! with { TcpFlags = 0x10, TcpSequence = 1001 }, Counter: DatapathCounter.FlowHit);
            return new PacketCase("", [first, ack]);
        },
        ["fullnat reply returns as VIP:port to the client"] = env => FullNatReply(env, reply => reply),
        ["a reply from the client's side is a spoof"] = env =>
        {
            var forward = FullNatForward(env, ToVip(env));
            var sent = forward.Expected!;
            var spoofed = new PacketSpec
            {
                SourceMac = ClientMac, DestinationMac = Cl0Mac, Protocol = PacketBuilder.Tcp, TcpFlags = 0x12,
                Source = sent.Destination, SourcePort = sent.DestinationPort, Destination = sent.Source, DestinationPort = sent.SourcePort,
            };
            return new PacketCase("", [forward, new PacketStep(spoofed, "cl0", XdpAction.Drop, Drop: DropReason.ReplyIngress)]);
        },
        ["a dnat reply from the client's side is a spoof"] = env =>
        {
            var query = Udp(env, DnsDnat) with { Payload = [1] };
            var forward = DnatForward(env, query, DnsDnat);
            var sent = forward.Expected!;
            var spoofed = new PacketSpec
            {
                SourceMac = ClientMac, DestinationMac = Cl0Mac, Protocol = PacketBuilder.Udp,
                Source = sent.Destination, SourcePort = sent.DestinationPort, Destination = query.Source, DestinationPort = query.SourcePort,
            };
            return new PacketCase("", [forward, new PacketStep(spoofed, "cl0", XdpAction.Drop, Drop: DropReason.ReplyIngress)]);
        },
        ["reply with ttl 1 is dropped"] = env =>
        {
            var forward = FullNatForward(env, ToVip(env));
            var sent = forward.Expected!;
            var reply = new PacketSpec
            {
                Source = sent.Destination, SourcePort = sent.DestinationPort, Destination = sent.Source,
                DestinationPort = sent.SourcePort, Protocol = PacketBuilder.Tcp, Ttl = 1,
            };
            return new PacketCase("", [forward, new PacketStep(reply, "be0", XdpAction.Drop, Drop: DropReason.TtlExceeded)]);
        },
        ["dnat udp keeps the client as source"] = env => Case(DnatForward(env, Udp(env, DnsDnat) with { Payload = [0xab, 0xcd] }, DnsDnat)),
        ["dnat udp without checksum stays without"] = env => Case(DnatForward(env, Udp(env, DnsDnat) with { UdpNoChecksum = true }, DnsDnat)),
        ["dnat reply returns as VIP:port"] = env =>
        {
            var query = Udp(env, DnsDnat) with { Payload = [1] };
            var forward = DnatForward(env, query, DnsDnat);
            var sent = forward.Expected!;
            var reply = new PacketSpec
            {
                SourceMac = BackendMac, DestinationMac = Be0Mac, Protocol = PacketBuilder.Udp,
                Source = sent.Destination, SourcePort = sent.DestinationPort,
                Destination = query.Source, DestinationPort = query.SourcePort, Payload = [2, 3],
            };
            var back = reply with
            {
                SourceMac = Cl0Mac, DestinationMac = ClientMac,
                Source = query.Destination, SourcePort = query.DestinationPort, Ttl = 63,
            };
            return new PacketCase("", [forward, new PacketStep(reply, "be0", XdpAction.Redirect, back, Counter: DatapathCounter.ReplyNat)]);
        },
        ["dnat udp reply without checksum stays without"] = env =>
        {
            var query = Udp(env, DnsDnat);
            var forward = DnatForward(env, query, DnsDnat);
            var reply = new PacketSpec
            {
                Protocol = PacketBuilder.Udp, UdpNoChecksum = true, SourceMac = BackendMac, DestinationMac = Be0Mac,
                Source = forward.Expected!.Destination, SourcePort = forward.Expected.DestinationPort,
                Destination = query.Source, DestinationPort = query.SourcePort,
            };
            var back = reply with { SourceMac = Cl0Mac, DestinationMac = ClientMac, Source = query.Destination, SourcePort = query.DestinationPort, Ttl = 63 };
            return new PacketCase("", [forward, new PacketStep(reply, "be0", XdpAction.Redirect, back)]);
        },
        ["ip options are kept and skipped"] = env => Case(FullNatForward(env, ToVip(env) with { IpOptions = [0x01, 0x01, 0x01, 0x00] })),
        ["longest ip options (IHL 15)"] = env => Case(FullNatForward(env, ToVip(env) with { IpOptions = Enumerable.Repeat((byte)0x01, 40).ToArray() })),
        ["ethernet padding is kept and not summed"] = env => Case(DnatForward(env, Udp(env, DnsDnat) with { TrailingPadding = 14 }, DnsDnat)),
        ["backend on the ingress link leaves through the devmap to the same link"] = env =>
        {
            var input = ToVip(env) with { Source = IPAddress.Parse("198.18.2.50"), SourceMac = BackendMac, DestinationMac = Be0Mac };
            var step = FullNatForward(env, input);
            return Case(step with { Ingress = "be0", Verdict = XdpAction.Redirect, Counter = DatapathCounter.Transmitted });
        },
        ["no neighbour yet: rewritten, handed to the kernel untouched otherwise"] = env =>
            HandedToKernel(FullNatForward(env, ToVip(env, Unresolved), Unresolved), DatapathCounter.PassNoNeighbour),
        ["egress without XDP: rewritten, handed to the kernel"] = env =>
            HandedToKernel(FullNatForward(env, ToVip(env, Unattached), Unattached), DatapathCounter.PassEgressNotAttached),
        ["client affinity: one client, two ports, one backend"] = env =>
        {
            var first = ToVip(env, StickyDnat);
            var second = first with { SourcePort = env.NextClientPort() };
            return new PacketCase("", [DnatForward(env, first, StickyDnat), DnatForward(env, second, StickyDnat)]);
        },
    };

    // --- Builders -------------------------------------------------------------------

    private static PacketSpec ToVip(DatapathEnvironment env, ServiceSpec? service = null)
    {
        service ??= WebFullNat;
        return new PacketSpec
        {
            SourceMac = ClientMac,
            DestinationMac = Cl0Mac,
            Source = Client,
            Destination = service.Vip,
            Protocol = (byte)service.Protocol,
            SourcePort = env.NextClientPort(),
            DestinationPort = service.Port,
        };
    }

    private static PacketSpec Udp(DatapathEnvironment env, ServiceSpec service) =>
        ToVip(env, service) with { Protocol = PacketBuilder.Udp };

    private static PacketStep FullNatForward(DatapathEnvironment env, PacketSpec input, ServiceSpec? service = null)
    {
        service ??= WebFullNat;
        var backend = BalancerModel.PickBackend(service, input, env.Options.FlowHashSeed);
        var backendId = env.Programmer.Services[service.Key].BackendIds[backend.Name];
        var port = BalancerModel.FirstSnatPort(service, input, backendId, env.Options);
        var expected = input with
        {
            SourceMac = Be0Mac,
            DestinationMac = BackendMac,
            Source = SnatAddress,
            SourcePort = port,
            Destination = backend.Address,
            DestinationPort = backend.Port,
            Ttl = (byte)(input.Ttl - 1),
        };
        return new PacketStep(input, "cl0", XdpAction.Redirect, expected, Counter: DatapathCounter.Redirected);
    }

    private static PacketStep DnatForward(DatapathEnvironment env, PacketSpec input, ServiceSpec service)
    {
        var backend = BalancerModel.PickBackend(service, input, env.Options.FlowHashSeed);
        var expected = input with
        {
            SourceMac = Be0Mac,
            DestinationMac = BackendMac,
            Destination = backend.Address,
            DestinationPort = backend.Port,
            Ttl = (byte)(input.Ttl - 1),
        };
        return new PacketStep(input, "cl0", XdpAction.Redirect, expected, Counter: DatapathCounter.Redirected);
    }

    private static PacketCase Case(PacketStep step) => new("", [step]);

    /// <summary>A fullnat SYN forwarded, then the backend's SYN-ACK (shaped by <paramref name="shape"/>)
    /// returning to the client from VIP:port.</summary>
    private static PacketCase FullNatReply(DatapathEnvironment env, Func<PacketSpec, PacketSpec> shape)
    {
        var syn = ToVip(env);
        var forward = FullNatForward(env, syn);
        var sent = forward.Expected!;
        var reply = shape(new PacketSpec
        {
            SourceMac = BackendMac, DestinationMac = Be0Mac,
            Source = sent.Destination, SourcePort = sent.DestinationPort,
            Destination = sent.Source, DestinationPort = sent.SourcePort,
            Protocol = PacketBuilder.Tcp, TcpFlags = 0x12, Ttl = 64,
        });
        var back = reply with
        {
            SourceMac = Cl0Mac, DestinationMac = ClientMac,
            Source = syn.Destination, SourcePort = syn.DestinationPort,
            Destination = syn.Source, DestinationPort = syn.SourcePort, Ttl = 63,
        };
        return new PacketCase("", [forward, new PacketStep(reply, "be0", XdpAction.Redirect, back, Counter: DatapathCounter.ReplyNat)]);
    }

    /// <summary>A 3,000-byte UDP datagram in three fragments: each leaves rewritten like the first, whose UDP
    /// checksum is updated for the whole datagram; then a fragmented reply returns the same way.</summary>
    private static PacketCase Fragmented(DatapathEnvironment env, ServiceSpec service)
    {
        // Each translated datagram gets a fresh IP id (many clients' ids meet at one SNAT address):
        // the first fragment's output fixes it, the following ones must carry the same.
        var payload = Enumerable.Range(0, 3000).Select(i => (byte)(i * 13)).ToArray();
        var whole = Udp(env, service) with { Payload = payload, Identification = (ushort)(0x4000 + service.Port), SourcePort = (ushort)(41000 + service.Port) };
        var first = service.Mode == ServiceMode.FullNat ? FullNatForward(env, whole with { Fragment = (0, 1480, true) }, service)
            : DnatForward(env, whole with { Fragment = (0, 1480, true) }, service);
        var steps = new List<PacketStep> { first with { IpIdFrom = 0 } };
        foreach (var (offset, more) in new[] { (1480, true), (2960, false) })
        {
            var part = whole with { Fragment = (offset, 1480, more) };
            steps.Add(new PacketStep(part, "cl0", XdpAction.Redirect, first.Expected! with { Fragment = part.Fragment },
                Counter: DatapathCounter.FragmentFollowed, IpIdFrom: 0));
        }
        var sent = first.Expected! with { Fragment = null };
        var reply = new PacketSpec
        {
            SourceMac = BackendMac, DestinationMac = Be0Mac, Protocol = PacketBuilder.Udp, Payload = payload[..2000], Identification = 0x5151,
            Source = sent.Destination, SourcePort = sent.DestinationPort, Destination = sent.Source, DestinationPort = sent.SourcePort,
        };
        var back = reply with
        {
            SourceMac = Cl0Mac, DestinationMac = ClientMac, Ttl = 63,
            Source = whole.Destination, SourcePort = whole.DestinationPort, Destination = whole.Source, DestinationPort = whole.SourcePort,
        };
        steps.Add(new PacketStep(reply with { Fragment = (0, 1480, true) }, "be0", XdpAction.Redirect, back with { Fragment = (0, 1480, true) },
            Counter: DatapathCounter.ReplyNat, IpIdFrom: 3));
        steps.Add(new PacketStep(reply with { Fragment = (1480, 1480, false) }, "be0", XdpAction.Redirect, back with { Fragment = (1480, 1480, false) },
            Counter: DatapathCounter.FragmentFollowed, IpIdFrom: 3));
        return new PacketCase("", steps);
    }

    /// <summary>Two datagrams under one (sender, receiver, id, protocol) at once (clients behind one NAT,
    /// or a spoofed first fragment): neither one's following fragments are guessed; they are dropped.</summary>
    private static PacketCase AmbiguousFragments(DatapathEnvironment env)
    {
        var payload = new byte[2000];
        var a = Udp(env, UdpFullNat) with { Payload = payload, Identification = 0x6161, SourcePort = 42001 };
        var b = a with { SourcePort = 42002 };
        return new PacketCase("",
        [
            FullNatForward(env, a with { Fragment = (0, 1480, true) }, UdpFullNat) with { IpIdFrom = 0 },
            FullNatForward(env, b with { Fragment = (0, 1480, true) }, UdpFullNat) with { IpIdFrom = 1 },
            new PacketStep(a with { Fragment = (1480, 1480, false) }, "cl0", XdpAction.Drop, Drop: DropReason.Fragment),
        ]);
    }

    private static readonly IPAddress ClientSideRouter = IPAddress.Parse("198.19.1.1");
    private static readonly IPAddress BackendSideRouter = IPAddress.Parse("198.18.2.1");

    /// <summary>A connection, a reply to the client, then "fragmentation needed" about that reply from a
    /// router on the client's side, to the VIP: it reaches the backend quoting the reply as the backend sent it.</summary>
    private static PacketCase IcmpToBackend(DatapathEnvironment env, ServiceSpec service, PacketSpec? first = null)
    {
        var syn = first ?? ToVip(env, service);
        var forward = service.Mode == ServiceMode.FullNat ? FullNatForward(env, syn, service) : DnatForward(env, syn, service);
        var sent = forward.Expected!;
        var reply = new PacketSpec
        {
            SourceMac = BackendMac, DestinationMac = Be0Mac, Protocol = syn.Protocol, TcpFlags = 0x12, Payload = [7, 7, 7],
            Source = sent.Destination, SourcePort = sent.DestinationPort, Destination = sent.Source, DestinationPort = sent.SourcePort,
        };
        var back = reply with
        {
            SourceMac = Cl0Mac, DestinationMac = ClientMac, Ttl = 63,
            Source = syn.Destination, SourcePort = syn.DestinationPort, Destination = syn.Source, DestinationPort = syn.SourcePort,
        };
        var error = new PacketSpec
        {
            SourceMac = ClientMac, DestinationMac = Cl0Mac, Source = ClientSideRouter, Destination = syn.Destination,
            Protocol = PacketBuilder.Icmp, IcmpType = 3, IcmpCode = 4, IcmpRest = 1400, Payload = PacketBuilder.Quote(back),
        };
        var translated = error with
        {
            SourceMac = Be0Mac, DestinationMac = BackendMac, Ttl = 63,
            Source = service.Mode == ServiceMode.FullNat ? SnatAddress : ClientSideRouter, Destination = sent.Destination,
            Payload = PacketBuilder.Quote(reply with { Ttl = 63 }),
        };
        return new PacketCase("", [forward, new PacketStep(reply, "be0", XdpAction.Redirect, back, Counter: DatapathCounter.ReplyNat),
            new PacketStep(error, "cl0", XdpAction.Redirect, translated, Counter: DatapathCounter.IcmpToBackend)]);
    }

    /// <summary>A connection, then an ICMP error about the packet forwarded to the backend, from a router
    /// on the backend's side (fullnat: to the SNAT address; dnat: on its way to the client): it reaches the
    /// client from the VIP, quoting the client's packet as the client addressed it.</summary>
    private static PacketCase IcmpToClient(DatapathEnvironment env, ServiceSpec service, byte code = 4)
    {
        var syn = ToVip(env, service);
        var forward = service.Mode == ServiceMode.FullNat ? FullNatForward(env, syn, service) : DnatForward(env, syn, service);
        var sent = forward.Expected!;
        var error = new PacketSpec
        {
            SourceMac = BackendMac, DestinationMac = Be0Mac, Source = BackendSideRouter, Destination = sent.Source,
            Protocol = PacketBuilder.Icmp, IcmpType = 3, IcmpCode = code, IcmpRest = code == 4 ? 1400u : 0, Payload = PacketBuilder.Quote(sent),
        };
        var translated = error with
        {
            SourceMac = Cl0Mac, DestinationMac = ClientMac, Ttl = 63, Source = syn.Destination, Destination = syn.Source,
            Payload = PacketBuilder.Quote(syn with { Ttl = 63 }),
        };
        return new PacketCase("", [forward, new PacketStep(error, "be0", XdpAction.Redirect, translated, Counter: DatapathCounter.IcmpToClient)]);
    }

    /// <summary>The rewrite happened, but MACs and TTL are left for the kernel, which forwards it.</summary>
    private static PacketCase HandedToKernel(PacketStep step, DatapathCounter counter)
    {
        var expected = step.Expected! with { SourceMac = step.Input.SourceMac, DestinationMac = step.Input.DestinationMac, Ttl = step.Input.Ttl };
        return Case(step with { Verdict = XdpAction.Pass, Expected = expected, Counter = counter });
    }

    private static PacketCase Unchanged(PacketSpec input, DatapathCounter counter, string ingress = "cl0") =>
        Case(new PacketStep(input, ingress, XdpAction.Pass, Counter: counter));

    private static PacketCase Unchanged(RawFrame frame, DatapathCounter counter) =>
        Case(new PacketStep(frame.AsSpec(), "cl0", XdpAction.Pass, Counter: counter));

    private static PacketCase Dropped(PacketSpec input, DropReason reason, string ingress = "cl0") =>
        Case(new PacketStep(input, ingress, XdpAction.Drop, Drop: reason));

    private static RawFrame Raw(byte[] bytes) => new(bytes);

    private static byte[] ArpFrame() =>
    [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0x01, 0xaa, 0x08, 0x06,
        0, 1, 8, 0, 6, 4, 0, 1, 0x02, 0, 0, 0, 0x01, 0xaa, 198, 19, 1, 10, 0, 0, 0, 0, 0, 0, 198, 18, 100, 1,
    ];

    private static byte[] Ipv6Frame()
    {
        var frame = new byte[14 + 40 + 8];
        new byte[] { 0x02, 0, 0, 0, 0x01, 0x01, 0x02, 0, 0, 0, 0x01, 0xaa, 0x86, 0xdd, 0x60 }.CopyTo(frame, 0);
        frame[14 + 5] = 8;  // payload length
        frame[14 + 6] = 17; // UDP
        frame[14 + 7] = 64;
        return frame;
    }
}

/// <summary>A frame given as raw bytes (ARP, IPv6, runts): carried through PacketSpec.</summary>
public sealed record RawFrame(byte[] Bytes)
{
    public PacketSpec AsSpec() => new() { Source = IPAddress.Any, Destination = IPAddress.Any, RawBytes = Bytes };
}
