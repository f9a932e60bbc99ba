// keeps the library non-empty until the DNS server lands
