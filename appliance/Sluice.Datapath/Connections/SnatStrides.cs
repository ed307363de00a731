namespace Sluice.Datapath.Connections;

/// <summary>
/// The probe strides the datapath may give a new connection (sluice_load_config.snat_strides):
/// spread over the port range and each coprime with its size, so a connection's probes
/// visit distinct ports instead of cycling over a few (a stride of 4 in a range of 12
/// reaches only 3 of them).
/// </summary>
public static class SnatStrides
{
    public static ushort[] For(int rangeSize, int count = Abi.LoadConfig.SnatStrideCount)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rangeSize, 1);
        var strides = new ushort[count];
        if (rangeSize <= 2)
        {
            Array.Fill(strides, (ushort)1);
            return strides;
        }
        for (var i = 0; i < count; i++)
        {
            // Candidates spread over 1..range-1, each moved up to the next coprime value.
            var candidate = 1 + (int)((long)i * (rangeSize - 1) / count);
            while (Gcd(candidate, rangeSize) != 1)
            {
                candidate = candidate % (rangeSize - 1) + 1;
            }
            strides[i] = (ushort)candidate;
        }
        return strides;
    }

    private static int Gcd(int a, int b) => b == 0 ? a : Gcd(b, a % b);
}
