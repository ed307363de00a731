namespace Sluice.Datapath.Interop;

/// <summary>Reads struct bpf_map_info of a map fd.</summary>
internal static unsafe class MapInfo
{
    /// <summary>max_entries: the fifth u32 of struct bpf_map_info (type, id, key_size, value_size, max_entries).</summary>
    public static uint MaxEntries(int fd, string what)
    {
        var info = stackalloc uint[32];
        new Span<uint>(info, 32).Clear();
        uint length = 32 * sizeof(uint);
        BpfException.ThrowIfNegative(Libbpf.ObjGetInfoByFd(fd, info, &length), $"info of {what}");
        return info[4];
    }
}
