using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using IoreqSdk.Xen;

namespace IoreqSdk.Tests.Xen;

/// <summary>
/// Every P/Invoke of the library, found by reflection, and the C++ that checks each one against the real prototype in
/// the installed headers: parameter count, return type, and every parameter's width, signedness and pointer level.
/// </summary>
internal static class NativeSignatures
{
    /// <summary>The headers that declare each library's functions.</summary>
    private static readonly Dictionary<string, string[]> s_headers = new()
    {
        ["libxendevicemodel.so.1"] = ["xendevicemodel.h"],
        ["libxenforeignmemory.so.1"] = ["xenforeignmemory.h"],
        ["libxenevtchn.so.1"] = ["xenevtchn.h"],
        ["libxenstore.so.4"] = ["xenstore.h"],
        ["libc.so.6"] = ["poll.h", "sys/eventfd.h", "sys/uio.h", "unistd.h", "fcntl.h", "stdlib.h"],
        ["libdl.so.2"] = ["dlfcn.h"],
    };

    public static IReadOnlyList<MethodInfo> All { get; } = typeof(XenHypervisor).Assembly.GetTypes()
        .SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public | BindingFlags.DeclaredOnly))
        .Where(m => m.GetCustomAttribute<DllImportAttribute>() is not null)
        .OrderBy(m => m.GetCustomAttribute<DllImportAttribute>()!.EntryPoint, StringComparer.Ordinal)
        .ToList();

    public static string Library(MethodInfo method) => method.GetCustomAttribute<DllImportAttribute>()!.Value;

    public static string EntryPoint(MethodInfo method) => method.GetCustomAttribute<DllImportAttribute>()!.EntryPoint!;

    /// <summary>A C++ translation unit of static_asserts, each tagged with its entry point.</summary>
    public static string Generate(IEnumerable<MethodInfo> methods)
    {
        var text = new StringBuilder();
        text.AppendLine("#include <cstddef>\n#include <cstdint>\n#include <tuple>\n#include <type_traits>");
        text.AppendLine("extern \"C\" {");
        foreach (string header in s_headers.Values.SelectMany(h => h).Distinct())
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"#include <{header}>");
        }

        text.AppendLine("}");
        text.AppendLine("""
            template <typename T> struct fn;
            template <typename R, typename... A> struct fn<R (*)(A...)> {
                using ret = R;
                template <std::size_t I> using arg = std::remove_cv_t<std::tuple_element_t<I, std::tuple<A...>>>;
                static constexpr std::size_t count = sizeof...(A);
            };
            // glibc's C++ declarations are noexcept; the check is about the C ABI, so noexcept is the same function.
            template <typename R, typename... A> struct fn<R (*)(A...) noexcept> : fn<R (*)(A...)> {};
            // A variadic function (open without O_CREAT) is declared with its fixed parameters and called with those only.
            template <typename R, typename... A> struct fn<R (*)(A..., ...)> : fn<R (*)(A...)> {};
            template <typename R, typename... A> struct fn<R (*)(A..., ...) noexcept> : fn<R (*)(A...)> {};
            template <typename T> using plain = std::remove_cv_t<T>;
            template <typename T> struct underlying { using type = T; };
            template <typename T> requires std::is_enum_v<T> struct underlying<T> { using type = std::underlying_type_t<T>; };
            // An integer (or enum) of this many bytes and this signedness.
            template <typename T> constexpr bool integer(std::size_t size, bool is_signed) {
                using U = typename underlying<plain<T>>::type;
                // Plain char (C strings) is signed on x86 and unsigned on Arm: either C# byte or sbyte matches it.
                if constexpr (std::is_same_v<U, char>) { return size == 1; }
                return std::is_integral_v<U> && sizeof(U) == size && std::is_signed_v<U> == is_signed;
            }
            // Any pointer (an opaque handle, void *, a struct pointer).
            template <typename T> constexpr bool pointer() { return std::is_pointer_v<plain<T>>; }
            // A pointer to such an integer.
            template <typename T> constexpr bool pointer_to(std::size_t size, bool is_signed) {
                return std::is_pointer_v<plain<T>> && integer<std::remove_pointer_t<plain<T>>>(size, is_signed);
            }
            // A pointer to a pointer.
            template <typename T> constexpr bool pointer_to_pointer() {
                return std::is_pointer_v<plain<T>> && std::is_pointer_v<plain<std::remove_pointer_t<plain<T>>>>;
            }
            """);

        foreach (MethodInfo method in methods)
        {
            string entry = EntryPoint(method);
            string f = $"fn<decltype(&{entry})>";
            ParameterInfo[] parameters = method.GetParameters();
            text.AppendLine(CultureInfo.InvariantCulture, $"static_assert({f}::count == {parameters.Length}, \"[{entry}] parameter count\");");
            text.AppendLine(CultureInfo.InvariantCulture, $"static_assert({Check($"{f}::ret", method.ReturnType)}, \"[{entry}] return type is not {method.ReturnType.Name}\");");
            for (int i = 0; i < parameters.Length; i++)
            {
                Type type = parameters[i].ParameterType;
                text.AppendLine(CultureInfo.InvariantCulture, $"static_assert({Check($"{f}::arg<{i}>", type)}, \"[{entry}] parameter {i} ({parameters[i].Name}) is not {type.Name}\");");
            }
        }

        return text.ToString();
    }

    /// <summary>The C++ predicate a C# blittable type demands of the C type in the same place.</summary>
    private static string Check(string cType, Type type)
    {
        if (type == typeof(void))
        {
            return $"std::is_void_v<{cType}>";
        }

        if (type == typeof(nint))
        {
            return $"pointer<{cType}>()";   // handles and addresses
        }

        if (type.IsPointer)
        {
            Type pointee = type.GetElementType()!;
            return pointee == typeof(void) ? $"pointer<{cType}>()"
                : pointee.IsPointer || pointee == typeof(nint) ? $"pointer_to_pointer<{cType}>()"
                : pointee.IsValueType && pointee.IsLayoutSequential && !pointee.IsPrimitive ? $"pointer<{cType}>() && sizeof(std::remove_pointer_t<{cType}>) == {Marshal.SizeOf(pointee)}"
                : $"pointer_to<{cType}>({Integer(pointee)})";
        }

        return $"integer<{cType}>({Integer(type)})";
    }

    private static string Integer(Type type) => type switch
    {
        _ when type == typeof(byte) => "1, false",
        _ when type == typeof(sbyte) => "1, true",
        _ when type == typeof(ushort) => "2, false",
        _ when type == typeof(short) => "2, true",
        _ when type == typeof(uint) => "4, false",
        _ when type == typeof(int) => "4, true",
        _ when type == typeof(ulong) => "8, false",
        _ when type == typeof(long) => "8, true",
        _ when type == typeof(nuint) => $"{IntPtr.Size}, false",
        _ => throw new NotSupportedException($"{type} is not a blittable integer: P/Invokes here take only integers and pointers."),
    };
}
