using Sluice.Datapath.Interop;

namespace Sluice.Datapath.Maps;

/// <summary>
/// A per-CPU array: one value per possible CPU, each slot rounded up to 8 bytes by
/// the kernel. Read returns the per-CPU values; callers sum them.
/// </summary>
public sealed unsafe class PerCpuArray<TValue>
    where TValue : unmanaged
{
    private readonly int slotSize = (sizeof(TValue) + 7) & ~7;

    public PerCpuArray(string name, int fd)
    {
        Name = name;
        Fd = fd;
    }

    public string Name { get; }

    public int Fd { get; }

    public static int PossibleCpus { get; } = Libbpf.NumPossibleCpus();

    public TValue[] Read(uint index)
    {
        var buffer = new byte[slotSize * PossibleCpus];
        fixed (byte* values = buffer)
        {
            BpfException.ThrowIfNegative(Libbpf.MapLookupElem(Fd, &index, values), $"lookup in {Name}");
            var result = new TValue[PossibleCpus];
            for (var cpu = 0; cpu < result.Length; cpu++)
            {
                result[cpu] = *(TValue*)(values + (cpu * slotSize));
            }
            return result;
        }
    }

    /// <summary>Zeroes one index on every CPU (a reused service or backend id starts at zero).</summary>
    public void Clear(uint index)
    {
        var buffer = new byte[slotSize * PossibleCpus];
        fixed (byte* values = buffer)
        {
            BpfException.ThrowIfNegative(Libbpf.MapUpdateElem(Fd, &index, values, 0), $"clear of {Name}");
        }
    }
}
