using Sluice.Datapath.Abi;
using Sluice.Datapath.Testing;
using Sluice.Testing.Packets;

namespace Sluice.Tests.Datapath;

/// <summary>One frame into the program and what must come out.</summary>
/// <param name="Expected">The expected output frame; null means "byte-identical to the input".</param>
/// <param name="Drop">For drops: the reason whose counter must rise by exactly one.</param>
/// <param name="Counter">A global counter that must rise by at least one.</param>
/// <param name="IpIdFrom">The expected IP id is the one the program chose for that earlier step's output
/// (a fragmented datagram's fresh id); the step's own output then fixes it for later steps.</param>
public sealed record PacketStep(
    PacketSpec Input,
    string Ingress,
    XdpAction Verdict,
    PacketSpec? Expected = null,
    DropReason? Drop = null,
    DatapathCounter? Counter = null,
    int? IpIdFrom = null);

/// <summary>A named case: steps run in order against the same datapath.</summary>
public sealed record PacketCase(string Name, IReadOnlyList<PacketStep> Steps);
