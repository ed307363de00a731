namespace Sluice.Datapath.Maglev;

/// <summary>One backend as Maglev sees it: a stable name (<c>address:port</c>) and a weight.</summary>
public sealed record MaglevBackend(string Name, uint Weight = 1);
