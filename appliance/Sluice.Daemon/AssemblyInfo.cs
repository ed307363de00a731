// sluiced drives XDP, netlink and bpffs: Linux only.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
