namespace Sluice.Datapath.Abi;

/// <summary>enum sluice_counter: global per-CPU counters. Append only, never renumber.</summary>
public enum DatapathCounter
{
    Received = 0,
    PassNotIpv4 = 1,
    PassUnparsedIpv4 = 2,
    PassNotService = 3,
    PassNoNeighbour = 4,
    PassFibLocal = 5,
    PassEgressNotAttached = 6,
    Transmitted = 7,
    Redirected = 8,
    Dropped = 9,
    FlowHit = 10,
    FlowNew = 11,
    FlowRehashed = 12,
    ReplyNat = 13,
    SnatProbeCollision = 14,
    FlowReopened = 15,
    SnatPortReused = 16,
    HandshakeProven = 17,
    FlowReplaced = 18,
    FlowRaceAdopted = 19,
    PartialChecksumFinished = 20,
    PassTtlExceeded = 21,
    EchoReplied = 22,
    IcmpToBackend = 23,
    IcmpToClient = 24,
    FragNeededSent = 25,
    PassToFragment = 26,
    FragmentFollowed = 27,
    PassUnknownVlan = 28,
}

/// <summary>enum sluice_drop_reason. Append only, never renumber.</summary>
public enum DropReason
{
    None = 0,
    NoService = 1,
    UnsupportedProtocol = 2,
    IpHeaderInvalid = 3,
    IpLengthInvalid = 4,
    L4Truncated = 5,
    Fragment = 6,
    TtlExceeded = 7,
    NoBackend = 8,
    NoSnatAddress = 9,
    SnatExhausted = 10,
    FlowInsertFailed = 11,
    NoRoute = 12,
    ForwardingDisabled = 13,
    FragmentationNeeded = 14,
    NoConnection = 15,
    HandshakeLimit = 16,
    ConnectionTableFull = 17,
    StaleConnection = 18,
    ConnectionExpiring = 19,
    PartialChecksum = 20,
    IpChecksum = 21,
    IcmpRateLimited = 22,
    ReplyIngress = 23,
    VlanTag = 24,
}

/// <summary>Sizes of the counter arrays (SLUICE_COUNTER_SLOTS, SLUICE_DROP_SLOTS).</summary>
public static class CounterSlots
{
    public const int Counters = 32;
    public const int Drops = 32;
}
