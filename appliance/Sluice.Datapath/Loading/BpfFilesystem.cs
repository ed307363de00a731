namespace Sluice.Datapath.Loading;

/// <summary>Checks that a pin directory lies on a mounted bpffs before anything is pinned.</summary>
public static class BpfFilesystem
{
    public static void EnsurePinDirectory(string pinPath)
    {
        var full = Path.GetFullPath(pinPath);
        var mount = File.ReadAllLines("/proc/self/mounts")
            .Select(line => line.Split(' '))
            .Where(fields => fields.Length > 2 && fields[2] == "bpf")
            .Select(fields => fields[1])
            .Where(point => full == point || full.StartsWith(point.TrimEnd('/') + "/", StringComparison.Ordinal))
            .OrderByDescending(point => point.Length)
            .FirstOrDefault();
        if (mount is null)
        {
            throw new DatapathException(
                $"pin path {full} is not on a BPF filesystem; mount one with: mount -t bpf bpf /sys/fs/bpf");
        }
        Directory.CreateDirectory(full);
    }
}
