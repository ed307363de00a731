using System.Runtime.InteropServices;

namespace Sluice.Datapath.Interop;

/// <summary>A failed BPF or libbpf call: what we tried, errno, and its text.</summary>
public sealed class BpfException : Exception
{
    public BpfException(string operation, int errno)
        : base($"{operation}: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})")
    {
        Operation = operation;
        Errno = errno;
    }

    public string Operation { get; }

    public int Errno { get; }

    /// <summary>Throws for a negative libbpf return; libbpf 1.x returns -errno.</summary>
    internal static int ThrowIfNegative(int result, string operation)
    {
        if (result < 0)
        {
            throw new BpfException(operation, -result);
        }
        return result;
    }

    internal static nint ThrowIfNull(nint result, string operation)
    {
        if (result == 0)
        {
            throw new BpfException(operation, Marshal.GetLastPInvokeError());
        }
        return result;
    }
}
