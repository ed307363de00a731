using System.Net;
using Sluice.Datapath.Abi;
using Sluice.Datapath.Programming;
using Sluice.Datapath.Testing;
using Sluice.Testing.Packets;
using static Sluice.Tests.Datapath.DatapathEnvironment;
using static Sluice.Tests.Datapath.ProgrammedEnvironment;

namespace Sluice.Tests.Datapath;

/// <summary>
/// 802.1Q: XDP runs on the parent and sees tagged frames. A frame of a VLAN the appliance has a
/// sub-interface for is routed as if it came in on that sub-interface and leaves with the tag of
/// the sub-interface the FIB chose (rewritten, pushed or popped); any other tagged frame passes
/// untouched. Replies are accepted only from the backend's VLAN.
/// </summary>
public static partial class PacketCases
{
    private static readonly IPAddress VlanClient = IPAddress.Parse("198.19.100.10");

    private static readonly Dictionary<string, Func<DatapathEnvironment, PacketCase>> VlanCases = new()
    {
        ["vlan: a VLAN with no sub-interface passes untouched"] = env => Unchanged(FromVlan100(env) with { VlanTags = [999] }, DatapathCounter.PassUnknownVlan),
        ["vlan: another interface's VLAN passes untouched"] = env => Unchanged(FromVlan100(env) with { VlanTags = [200] }, DatapathCounter.PassUnknownVlan),
        ["vlan: to a backend on the untagged link, the tag is popped"] = env =>
            Case(Tagged(FullNatForward(env, FromVlan100(env)), [])),
        ["vlan: from the untagged link to a backend on a VLAN, the tag is pushed"] = env =>
            Case(Tagged(FullNatForward(env, ToVip(env, OnVlan200), OnVlan200), [200])),
        ["vlan: from one VLAN to another, the id is rewritten and the priority kept"] = env =>
            Case(Tagged(FullNatForward(env, FromVlan100(env, OnVlan200) with { VlanTags = [0xa064] }, OnVlan200), [0xa0c8])),
        ["vlan: dnat both ways across two VLANs"] = env =>
        {
            var query = FromVlan100(env, DnatOnVlan200) with { Protocol = PacketBuilder.Udp, Payload = [1, 2, 3] };
            var forward = Tagged(DnatForward(env, query, DnatOnVlan200), [200]);
            var sent = forward.Expected!;
            var reply = BackendReply(sent) with { VlanTags = [200], Payload = [4, 5] };
            var back = reply with
            {
                SourceMac = Cl0Mac, DestinationMac = ClientMac, VlanTags = [100], Ttl = 63,
                Source = query.Destination, SourcePort = query.DestinationPort,
            };
            return new PacketCase("", [forward, new PacketStep(reply, "be0", XdpAction.Redirect, back, Counter: DatapathCounter.Redirected)]);
        },
        ["vlan: a reply from the backend's link but outside its VLAN is dropped"] = env =>
        {
            var forward = Tagged(FullNatForward(env, ToVip(env, OnVlan200), OnVlan200), [200]);
            var sent = forward.Expected!;
            var reply = BackendReply(sent) with { TcpFlags = 0x12 };
            return new PacketCase("", [forward, new PacketStep(reply, "be0", XdpAction.Drop, Drop: DropReason.ReplyIngress),
                new PacketStep(reply with { VlanTags = [201] }, "be0", XdpAction.Pass, Counter: DatapathCounter.PassUnknownVlan)]);
        },
        ["vlan: a backend on a VLAN of an interface without XDP is handed to the kernel"] = env =>
            HandedToKernel(FullNatForward(env, ToVip(env, OnVlanOfUnattached), OnVlanOfUnattached), DatapathCounter.PassEgressNotAttached),
        ["vlan: an echo request on a VLAN is answered on it"] = env =>
        {
            var request = FromVlan100(env) with { Protocol = PacketBuilder.Icmp, Payload = "ping"u8.ToArray(), Ttl = 5 };
            var reply = request with
            {
                SourceMac = Cl0Mac, DestinationMac = ClientMac, Source = request.Destination, Destination = request.Source, IcmpType = 0, Ttl = 64,
            };
            return Case(new PacketStep(request, "cl0", XdpAction.Redirect, reply, Counter: DatapathCounter.EchoReplied));
        },
    };

    /// <summary>From a client on VLAN 100 (cl0.100), tagged.</summary>
    private static PacketSpec FromVlan100(DatapathEnvironment env, ServiceSpec? service = null) =>
        ToVip(env, service) with { Source = VlanClient, VlanTags = [100] };

    /// <summary>The backend's answer to what was sent to it, arriving untagged on be0.</summary>
    private static PacketSpec BackendReply(PacketSpec sent) => new()
    {
        SourceMac = BackendMac, DestinationMac = Be0Mac, Protocol = sent.Protocol,
        Source = sent.Destination, SourcePort = sent.DestinationPort, Destination = sent.Source, DestinationPort = sent.SourcePort,
    };

    private static PacketStep Tagged(PacketStep step, ushort[] tags) => step with { Expected = step.Expected! with { VlanTags = tags } };
}
