namespace Sluice.Datapath.Loading;

/// <summary>Where XDP runs: in the driver (native) or after the stack built an skb (generic).</summary>
public enum AttachMode
{
    Native,
    Generic,
}

internal static class XdpFlags
{
    public const uint UpdateIfNoExist = 1u << 0;
    public const uint SkbMode = 1u << 1;
    public const uint DriverMode = 1u << 2;
    public const uint Replace = 1u << 4;

    public static uint For(AttachMode mode) => mode == AttachMode.Native ? DriverMode : SkbMode;
}
