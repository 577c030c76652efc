"""Vietnamese text normaliser: exact readings of realistic ward announcements, plus property tests."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audio.normalize import DEFAULT_ABBREVIATIONS, normalize, read_decimal, read_number

AUDIO_DIR = Path(__file__).resolve().parent.parent / "audio"

# ------------------------------------------------------------------------------------------ read_number

NUMBERS = [
    (0, "không"),
    (1, "một"),
    (5, "năm"),
    (10, "mười"),
    (11, "mười một"),
    (14, "mười bốn"),
    (15, "mười lăm"),
    (20, "hai mươi"),
    (21, "hai mươi mốt"),
    (24, "hai mươi tư"),
    (25, "hai mươi lăm"),
    (31, "ba mươi mốt"),
    (44, "bốn mươi tư"),
    (55, "năm mươi lăm"),
    (100, "một trăm"),
    (101, "một trăm linh một"),
    (104, "một trăm linh bốn"),
    (105, "một trăm linh năm"),
    (110, "một trăm mười"),
    (111, "một trăm mười một"),
    (115, "một trăm mười lăm"),
    (121, "một trăm hai mươi mốt"),
    (1000, "một nghìn"),
    (1005, "một nghìn không trăm linh năm"),
    (1010, "một nghìn không trăm mười"),
    (1050, "một nghìn không trăm năm mươi"),
    (1945, "một nghìn chín trăm bốn mươi lăm"),
    (2016, "hai nghìn không trăm mười sáu"),
    (2025, "hai nghìn không trăm hai mươi lăm"),
    (10_000, "mười nghìn"),
    (15_000, "mười lăm nghìn"),
    (21_000, "hai mươi mốt nghìn"),
    (40_500, "bốn mươi nghìn năm trăm"),
    (105_000, "một trăm linh năm nghìn"),
    (1_000_000, "một triệu"),
    (1_200_000, "một triệu hai trăm nghìn"),
    (1_000_050, "một triệu không trăm năm mươi"),
    (1_050_000, "một triệu không trăm năm mươi nghìn"),
    (1_263_600, "một triệu hai trăm sáu mươi ba nghìn sáu trăm"),
    (3_000_005, "ba triệu không trăm linh năm"),
    (1_000_000_000, "một tỷ"),
    (2_500_000_000, "hai tỷ năm trăm triệu"),
    (1_000_000_000_000, "một nghìn tỷ"),
]


@pytest.mark.parametrize(("n", "expected"), NUMBERS)
def test_read_number(n, expected):
    assert read_number(n) == expected


DECIMALS = [
    ("12,75", "mười hai phẩy bảy mươi lăm"),
    ("7,5", "bảy phẩy năm"),
    ("0,05", "không phẩy không năm"),
    ("0,5", "không phẩy năm"),
    ("2,50", "hai phẩy năm mươi"),
    ("3.5", "ba phẩy năm"),
    ("1.234,5", "một nghìn hai trăm ba mươi tư phẩy năm"),
    ("12,125", "mười hai phẩy một trăm hai mươi lăm"),
    ("3,14159", "ba phẩy một bốn một năm chín"),
]


@pytest.mark.parametrize(("s", "expected"), DECIMALS)
def test_read_decimal(s, expected):
    assert read_decimal(s) == expected


def test_read_decimal_rejects_garbage():
    with pytest.raises(ValueError):
        read_decimal("12,5abc")


# ------------------------------------------------------------------------------------------- normalize

CASES = [
    # --- plain numbers, population counts
    ("Phường có 1.250 hộ.", "Phường có một nghìn hai trăm năm mươi hộ."),
    ("Tổng số 3.456 nhân khẩu", "Tổng số ba nghìn bốn trăm năm mươi sáu nhân khẩu"),
    ("Năm 2025", "Năm hai nghìn không trăm hai mươi lăm"),
    ("40.500 người", "bốn mươi nghìn năm trăm người"),
    ("1.000.050 đồng", "một triệu không trăm năm mươi đồng"),
    ("Chỉ số 3.5", "Chỉ số ba phẩy năm"),
    ("tổ 05", "tổ năm"),
    ("1,250,000 người", "một triệu hai trăm năm mươi nghìn người"),
    ("Mục 1.2.3", "Mục một chấm hai chấm ba"),
    ("đàn 2.300 con gia cầm", "đàn hai nghìn ba trăm con gia cầm"),
    ("Kỷ niệm 50 năm", "Kỷ niệm năm mươi năm"),
    # --- percentages
    ("Tỷ lệ 12,5%", "Tỷ lệ mười hai phẩy năm phần trăm"),
    ("Đạt 30% kế hoạch", "Đạt ba mươi phần trăm kế hoạch"),
    ("tăng 20-25%", "tăng hai mươi đến hai mươi lăm phần trăm"),
    ("tỷ lệ hộ nghèo 1,2%.", "tỷ lệ hộ nghèo một phẩy hai phần trăm."),
    ("95% trẻ em được tiêm", "chín mươi lăm phần trăm trẻ em được tiêm"),
    ("mức thu 0,03%", "mức thu không phẩy không ba phần trăm"),
    ("~30% diện tích", "khoảng ba mươi phần trăm diện tích"),
    # --- ranges
    ("từ 20-25 tuổi", "từ hai mươi đến hai mươi lăm tuổi"),
    ("20 - 25", "hai mươi đến hai mươi lăm"),
    ("20–25", "hai mươi đến hai mươi lăm"),
    ("2016-2020", "hai nghìn không trăm mười sáu đến hai nghìn không trăm hai mươi"),
    (
        "giai đoạn 2021 - 2025",
        "giai đoạn hai nghìn không trăm hai mươi mốt đến hai nghìn không trăm hai mươi lăm",
    ),
    ("Bão số 3, gió giật cấp 10-12.", "Bão số ba, gió giật cấp mười đến mười hai."),
    ("lượng mưa 100-200mm", "lượng mưa một trăm đến hai trăm mi li mét"),
    ("nhiệm kỳ 2025-2030", "nhiệm kỳ hai nghìn không trăm hai mươi lăm đến hai nghìn không trăm ba mươi"),
    ("trẻ từ 1-5 tuổi", "trẻ từ một đến năm tuổi"),
    ("phạt từ 4.000.000 - 6.000.000 đồng", "phạt từ bốn triệu đến sáu triệu đồng"),
    ("nhiệt độ 35-37°C", "nhiệt độ ba mươi lăm đến ba mươi bảy độ xê"),
    # --- dates
    ("14/4/2018", "ngày mười bốn tháng tư năm hai nghìn không trăm mười tám"),
    ("ngày 14/4/2018", "ngày mười bốn tháng tư năm hai nghìn không trăm mười tám"),
    ("Ngày 2/9", "Ngày mùng hai tháng chín"),
    ("09/04/2022", "ngày mùng chín tháng tư năm hai nghìn không trăm hai mươi hai"),
    ("tháng 3/2024", "tháng ba năm hai nghìn không trăm hai mươi tư"),
    ("trong 12/2024", "trong tháng mười hai năm hai nghìn không trăm hai mươi tư"),
    (
        "Hội nghị lúc 7h30 ngày 15/3/2025 tại hội trường UBND phường.",
        "Hội nghị lúc bảy giờ ba mươi phút ngày mười lăm tháng ba năm hai nghìn không trăm hai mươi lăm "
        "tại hội trường ủy ban nhân dân phường.",
    ),
    ("Sáng 15/3, người dân tập trung", "Sáng ngày mười lăm tháng ba, người dân tập trung"),
    ("Sáng nay (14/4), trời nắng", "Sáng nay, ngày mười bốn tháng tư, trời nắng"),
    ("hôm 2/9", "hôm mùng hai tháng chín"),
    ("Quốc khánh 2-9", "Quốc khánh mùng hai tháng chín"),
    ("Ngày 20-11", "Ngày hai mươi tháng mười một"),
    ("14-4-2018", "ngày mười bốn tháng tư năm hai nghìn không trăm mười tám"),
    ("14.4.2018", "ngày mười bốn tháng tư năm hai nghìn không trăm mười tám"),
    (
        "Từ ngày 5-7/3/2025",
        "Từ ngày mùng năm đến mùng bảy tháng ba năm hai nghìn không trăm hai mươi lăm",
    ),
    ("từ 15/3-20/3", "từ ngày mười lăm tháng ba đến ngày hai mươi tháng ba"),
    ("từ 15/3 đến 20/3", "từ ngày mười lăm tháng ba đến ngày hai mươi tháng ba"),
    (
        "30/4/1975 - 30/4/2025",
        "ngày ba mươi tháng tư năm một nghìn chín trăm bảy mươi lăm đến ngày ba mươi tháng tư "
        "năm hai nghìn không trăm hai mươi lăm",
    ),
    ("ngày 15 tháng 3 năm 2025", "ngày mười lăm tháng ba năm hai nghìn không trăm hai mươi lăm"),
    ("Ngày 2 tháng 9 năm 1945", "Ngày mùng hai tháng chín năm một nghìn chín trăm bốn mươi lăm"),
    ("ngày 2-3 tháng 9", "ngày mùng hai đến mùng ba tháng chín"),
    ("mùng 2/9", "mùng hai tháng chín"),
    ("Trong tháng 4 có 2 đợt.", "Trong tháng tư có hai đợt."),
    ("mỗi tháng 4 lần", "mỗi tháng bốn lần"),
    ("Tháng 1", "Tháng một"),
    ("Thứ 2, 14/4", "Thứ hai, ngày mười bốn tháng tư"),
    ("Dịp 30/4 và 1/5", "Dịp ngày ba mươi tháng tư và ngày mùng một tháng năm"),
    ("quý IV/2024", "quý bốn năm hai nghìn không trăm hai mươi tư"),
    (
        "Hạn chót 31/12/2025.",
        "Hạn chót ngày ba mươi mốt tháng mười hai năm hai nghìn không trăm hai mươi lăm.",
    ),
    ("ngày 10/01/2025", "ngày mùng mười tháng một năm hai nghìn không trăm hai mươi lăm"),
    ("Ngày hội Đại đoàn kết 18/11", "Ngày hội Đại đoàn kết ngày mười tám tháng mười một"),
    # --- ratios
    ("12/20 hộ", "mười hai trên hai mươi hộ"),
    ("Đạt 9/10 tiêu chí", "Đạt chín trên mười tiêu chí"),
    ("tỷ lệ 3/5", "tỷ lệ ba trên năm"),
    ("Trực 24/7", "Trực hai mươi tư trên bảy"),
    ("8/10 xã", "tám trên mười xã"),
    ("15/32 tổ dân phố", "mười lăm trên ba mươi hai tổ dân phố"),
    ("4 người/hộ", "bốn người trên hộ"),
    ("Nhà số 5/2 ngõ 45", "Nhà số năm trên hai ngõ bốn mươi lăm"),
    # --- times
    ("6h45", "sáu giờ bốn mươi lăm phút"),
    ("14h00", "mười bốn giờ"),
    ("7h", "bảy giờ"),
    ("6 giờ 45", "sáu giờ bốn mươi lăm"),
    ("17:30", "mười bảy giờ ba mươi phút"),
    ("6h30'", "sáu giờ ba mươi phút"),
    ("7h30p", "bảy giờ ba mươi phút"),
    ("từ 7h00-11h00", "từ bảy giờ đến mười một giờ"),
    ("Thu gom rác 17h00 - 19h00 hàng ngày.", "Thu gom rác mười bảy giờ đến mười chín giờ hàng ngày."),
    ("lúc 7h05", "lúc bảy giờ năm phút"),
    ("6g30", "sáu giờ ba mươi phút"),
    ("trực 24h", "trực hai mươi tư giờ"),
    ("08:00", "tám giờ"),
    ("Từ 7h30 - 11h30", "Từ bảy giờ ba mươi phút đến mười một giờ ba mươi phút"),
    # --- money
    ("750.000 đồng", "bảy trăm năm mươi nghìn đồng"),
    ("750.000đ", "bảy trăm năm mươi nghìn đồng"),
    ("750.000 đ", "bảy trăm năm mươi nghìn đồng"),
    ("750.000 VNĐ", "bảy trăm năm mươi nghìn đồng"),
    ("750.000 VND", "bảy trăm năm mươi nghìn đồng"),
    ("2,5 tỷ", "hai phẩy năm tỷ"),
    ("1,2 triệu đồng", "một phẩy hai triệu đồng"),
    (
        "Mức đóng BHYT hộ gia đình là 1.263.600 đồng/người/năm.",
        "Mức đóng bảo hiểm y tế hộ gia đình là một triệu hai trăm sáu mươi ba nghìn sáu trăm đồng một người một năm.",
    ),
    ("Giá 15.000đ/kg", "Giá mười lăm nghìn đồng một ki lô gam"),
    ("Hỗ trợ 500.000 đ/hộ/tháng", "Hỗ trợ năm trăm nghìn đồng một hộ một tháng"),
    ("100 USD", "một trăm đô la Mỹ"),
    ("2 triệu đồng/tháng", "hai triệu đồng một tháng"),
    # --- units
    ("120 m2", "một trăm hai mươi mét vuông"),
    ("12.500 m²", "mười hai nghìn năm trăm mét vuông"),
    ("2,5 ha", "hai phẩy năm héc ta"),
    ("5km2", "năm ki lô mét vuông"),
    ("60km/h", "sáu mươi ki lô mét một giờ"),
    ("35°C", "ba mươi lăm độ xê"),
    ("38 độ C", "ba mươi tám độ xê"),
    ("30oC", "ba mươi độ xê"),
    ("25ºC", "hai mươi lăm độ xê"),
    ("-5°C", "âm năm độ xê"),
    ("50 kg gạo", "năm mươi ki lô gam gạo"),
    ("500 g", "năm trăm gam"),
    ("3 tấn", "ba tấn"),
    ("15 cm", "mười lăm xen ti mét"),
    ("2 l nước", "hai lít nước"),
    ("1,5 km", "một phẩy năm ki lô mét"),
    ("cách 200 m", "cách hai trăm mét"),
    ("6 tấn/ha", "sáu tấn một héc ta"),
    ("5.000 m3/s", "năm nghìn mét khối trên giây"),
    ("gió 15 m/s", "gió mười lăm mét trên giây"),
    (">38°C", "trên ba mươi tám độ xê"),
    ("phòng 3x4m", "phòng ba nhân bốn mét"),
    # --- phones and hotlines
    ("0912345678", "không chín một hai ba bốn năm sáu bảy tám"),
    ("0912 345 678", "không chín một hai ba bốn năm sáu bảy tám"),
    ("0912.345.678", "không chín một hai ba bốn năm sáu bảy tám"),
    ("SĐT: 0987.654.321", "số điện thoại: không chín tám bảy sáu năm bốn ba hai một"),
    ("Gọi 114", "Gọi một một bốn"),
    ("gọi ngay 113", "gọi ngay một một ba"),
    ("cấp cứu 115", "cấp cứu một một năm"),
    ("Tổng đài 1900 9095", "Tổng đài một chín không không chín không chín năm"),
    ("Hotline: 19001234", "Hotline: một chín không không một hai ba bốn"),
    ("1800.1234", "một tám không không một hai ba bốn"),
    ("Đường dây nóng 0243 3821 111", "Đường dây nóng không hai bốn ba ba tám hai một một một một"),
    ("điện thoại 3825", "điện thoại ba tám hai năm"),
    ("+84 912 345 678", "cộng tám bốn chín một hai ba bốn năm sáu bảy tám"),
    ("Xử lý 113 vụ vi phạm", "Xử lý một trăm mười ba vụ vi phạm"),
    ("Kêu gọi 100% hộ dân", "Kêu gọi một trăm phần trăm hộ dân"),
    ("gọi 2 lần", "gọi hai lần"),
    ("Gọi 113, 114, 115.", "Gọi một một ba, một một bốn, một một năm."),
    ("Số CCCD 001203004567", "Số căn cước công dân không không một hai không ba không không bốn năm sáu bảy"),
    # --- document numbers
    (
        "Nghị định 49/2024/NĐ-CP",
        "Nghị định bốn mươi chín năm hai nghìn không trăm hai mươi tư của Chính phủ",
    ),
    (
        "Thông tư 39/2020/TT-BTTTT",
        "Thông tư ba mươi chín năm hai nghìn không trăm hai mươi của Bộ Thông tin và Truyền thông",
    ),
    (
        "Luật 100/2015/QH13",
        "Luật một trăm năm hai nghìn không trăm mười lăm của Quốc hội khóa mười ba",
    ),
    (
        "Căn cứ Nghị định số 49/2024/NĐ-CP;",
        "Căn cứ Nghị định số bốn mươi chín năm hai nghìn không trăm hai mươi tư của Chính phủ;",
    ),
    ("văn bản số 123/QĐ-UBND", "văn bản số một trăm hai mươi ba quyết định của Ủy ban nhân dân"),
    ("Kế hoạch số 45/KH-UBND", "Kế hoạch số bốn mươi lăm của Ủy ban nhân dân"),
    (
        "Quyết định 15/2025/QĐ-UBND",
        "Quyết định mười lăm năm hai nghìn không trăm hai mươi lăm của Ủy ban nhân dân",
    ),
    ("Thông tư 01/2021/TT-BYT", "Thông tư một năm hai nghìn không trăm hai mươi mốt của Bộ Y tế"),
    ("Quyết định 1234/QĐ-TTg", "Quyết định một nghìn hai trăm ba mươi tư của Thủ tướng Chính phủ"),
    ("Chỉ thị 05-CT/TW", "Chỉ thị năm của Trung ương"),
    ("Công văn 234/UBND-VX", "Công văn hai trăm ba mươi tư của Ủy ban nhân dân vê ích xì"),
    ("Nghị quyết số 01/NQ-HĐND", "Nghị quyết số một của Hội đồng nhân dân"),
    (
        "căn cứ 49/2024/NĐ-CP",
        "căn cứ bốn mươi chín năm hai nghìn không trăm hai mươi tư nghị định của Chính phủ",
    ),
    ("Quyết định số 12/2024", "Quyết định số mười hai năm hai nghìn không trăm hai mươi tư"),
    # --- ordinals, Roman numerals, weekdays
    ("thứ 2", "thứ hai"),
    ("Thứ 4", "Thứ tư"),
    ("đứng thứ 1", "đứng thứ nhất"),
    ("lần thứ 3", "lần thứ ba"),
    ("hạng thứ 10", "hạng thứ mười"),
    ("tổ 5", "tổ năm"),
    ("Quốc hội khóa XV", "Quốc hội khóa mười lăm"),
    ("Đại hội XIII", "Đại hội mười ba"),
    ("thế kỷ XXI", "thế kỷ hai mươi mốt"),
    ("Đại hội Đảng bộ lần thứ XX", "Đại hội Đảng bộ lần thứ hai mươi"),
    ("kỳ họp thứ IV", "kỳ họp thứ tư"),
    ("Chương II", "Chương hai"),
    ("Chủ nhật", "Chủ nhật"),
    ("trừ CN", "trừ chủ nhật"),
    ("T2", "thứ hai"),
    ("T4", "thứ tư"),
    ("T7", "thứ bảy"),
    ("T2-T6", "thứ hai đến thứ sáu"),
    ("thứ 2 - thứ 6", "thứ hai đến thứ sáu"),
    ("Từ thứ 2 đến thứ 6", "Từ thứ hai đến thứ sáu"),
    # --- administrative abbreviations and place prefixes
    ("UBND phường", "ủy ban nhân dân phường"),
    ("HĐND, UBND, MTTQ", "hội đồng nhân dân, ủy ban nhân dân, mặt trận tổ quốc"),
    ("TP Hà Nội", "thành phố Hà Nội"),
    ("TP.HCM", "thành phố Hồ Chí Minh"),
    ("P.5, Q.1", "phường năm, quận một"),
    ("X. Tân Lập", "xã Tân Lập"),
    ("Tp. Thủ Đức", "thành phố Thủ Đức"),
    ("TT. Đông Anh", "thị trấn Đông Anh"),
    ("BHYT, BHXH", "bảo hiểm y tế, bảo hiểm xã hội"),
    ("Đội PCCC&CNCH", "Đội phòng cháy chữa cháy và cứu nạn cứu hộ"),
    ("Ban PCTT và TKCN", "Ban phòng chống thiên tai và tìm kiếm cứu nạn"),
    ("Sở GD&ĐT", "Sở giáo dục và đào tạo"),
    ("phát triển KT-XH, bảo đảm QP-AN", "phát triển kinh tế xã hội, bảo đảm quốc phòng an ninh"),
    ("Trường THCS và THPT", "Trường trung học cơ sở và trung học phổ thông"),
    ("CSGT nhắc nhở ATGT", "cảnh sát giao thông nhắc nhở an toàn giao thông"),
    ("xây dựng NTM", "xây dựng nông thôn mới"),
    ("HTX, TDP, KDC", "hợp tác xã, tổ dân phố, khu dân cư"),
    ("CHXHCN VN", "cộng hòa xã hội chủ nghĩa Việt Nam"),
    ("ĐTN TNCS HCM", "đoàn thanh niên thanh niên cộng sản Hồ Chí Minh"),
    ("CLB dưỡng sinh", "câu lạc bộ dưỡng sinh"),
    ("cải cách TTHC và CCHC", "cải cách thủ tục hành chính và cải cách hành chính"),
    ("BCĐ phường", "ban chỉ đạo phường"),
    ("Kênh VTV", "Kênh vê tê vê"),
    ("khuyến cáo của WHO", "khuyến cáo của vê kép hát o"),
    ("mã OTP", "mã o tê pê"),
    ("THÔNG BÁO KHẨN", "THÔNG BÁO KHẨN"),
    ("V/v tiêm chủng", "về việc tiêm chủng"),
    ("Đ/c Hùng", "đồng chí Hùng"),
    ("T/M UBND", "thay mặt ủy ban nhân dân"),
    ("COVID-19", "cô vít mười chín"),
    # --- letters glued to numbers
    ("H5N1", "hát năm en nờ một"),
    ("tổ 5B", "tổ năm bê"),
    ("QL1A", "quốc lộ một a"),
    ("F0", "ép không"),
    ("sóng 4G", "sóng bốn giê"),
    # --- symbols, pauses, layout
    ("Nhà văn hóa & sân thể thao", "Nhà văn hóa và sân thể thao"),
    ("giấy tờ, v.v.", "giấy tờ, vân vân"),
    ("Xin chờ...", "Xin chờ..."),
    ("Ông A (tổ 5) đã nộp.", "Ông A, tổ năm, đã nộp."),
    ("Xin   chào  bà con", "Xin chào bà con"),
    ("THÔNG BÁO\nVề việc tiêm chủng", "THÔNG BÁO. Về việc tiêm chủng"),
    ("Kính gửi:\n- Các hộ gia đình\n- Các cơ quan", "Kính gửi: Các hộ gia đình. Các cơ quan"),
    ("Hà Nội - Hải Phòng", "Hà Nội, Hải Phòng"),
    ("Xem tại dichvucong.gov.vn.", "Xem tại dichvucong chấm gov chấm vn."),
    (
        "https://www.hanoi.gov.vn/tin-tuc",
        "hanoi chấm gov chấm vn gạch chéo tin gạch ngang tuc",
    ),
    ("Gửi ubnd@hanoi.gov.vn", "Gửi ubnd a còng hanoi chấm gov chấm vn"),
    ("Có 2 điểm tiêm!", "Có hai điểm tiêm!"),
    # --- identifiers, addresses and other announcement details
    ("Điện thoại: (024) 3825 4321", "Điện thoại: không hai bốn ba tám hai năm bốn ba hai một"),
    (
        "Số tài khoản: 1234567890 tại Agribank",
        "Số tài khoản: một hai ba bốn năm sáu bảy tám chín không tại Agribank",
    ),
    ("MST 0101234567", "mã số thuế không một không một hai ba bốn năm sáu bảy"),
    ("Khu phố 3, đường 3/2", "Khu phố ba, đường ba tháng hai"),
    ("Lúc 14 giờ 00", "Lúc mười bốn giờ"),
    ("từ 0h ngày 1/7/2025", "từ không giờ ngày mùng một tháng bảy năm hai nghìn không trăm hai mươi lăm"),
    ("Mực nước sông 9,5m", "Mực nước sông chín phẩy năm mét"),
    ("Thứ Hai (10/3) họp", "Thứ Hai, ngày mùng mười tháng ba, họp"),
    ("Báo cáo T2/2025", "Báo cáo tháng hai năm hai nghìn không trăm hai mươi lăm"),
    ("Khám 6 tháng/lần", "Khám sáu tháng một lần"),
    ("Lớp 9/3", "Lớp chín trên ba"),
    ("hẻm 12/5", "hẻm mười hai trên năm"),
    (
        "Thông tư liên tịch 01/2020/TTLT-BTC-BNV",
        "Thông tư liên tịch một năm hai nghìn không trăm hai mươi của Bộ Tài chính, Bộ Nội vụ",
    ),
    ("Công điện số 01/CĐ-UBND", "Công điện số một của Ủy ban nhân dân"),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_normalize(text, expected):
    assert normalize(text) == expected


def test_case_count():
    assert len(CASES) + len(NUMBERS) + len(DECIMALS) >= 150


# Whole sentences as a ward culture officer broadcasts them: vaccination days, tax and insurance deadlines,
# storm and flood bulletins, elections, military service, fees, meetings, lost papers, traffic, fire safety.
# Conventions checked here: address slashes are "trên" ("số nhà 25/3" → "hai mươi lăm trên ba"); days 1–10 take
# "mùng"; "hạng/giải 1, 2" → "nhất, nhì"; coordinates "20,5°N" → "độ Vĩ Bắc"; "12 vụ/25 đối tượng" → "với";
# "2/3 dân số" → "hai phần ba"; a document's issuer is not repeated when "của …" follows the number.
ANNOUNCEMENTS = [
    (
        "UBND phường Tân Mai thông báo: Từ ngày 15/4/2025 đến hết ngày 30/4/2025, Trạm Y tế phường tổ chức tiêm "
        "vắc-xin phòng sởi cho trẻ từ 9 tháng đến 5 tuổi.",
        "ủy ban nhân dân phường Tân Mai thông báo: Từ ngày mười lăm tháng tư năm hai nghìn không trăm hai mươi "
        "lăm đến hết ngày ba mươi tháng tư năm hai nghìn không trăm hai mươi lăm, Trạm Y tế phường tổ chức tiêm "
        "vắc xin phòng sởi cho trẻ từ chín tháng đến năm tuổi.",
    ),
    (
        "Thời gian tiêm: buổi sáng từ 7h30 đến 11h00, buổi chiều từ 13h30 đến 16h30 các ngày từ thứ 2 đến thứ 6.",
        "Thời gian tiêm: buổi sáng từ bảy giờ ba mươi phút đến mười một giờ, buổi chiều từ mười ba giờ ba mươi "
        "phút đến mười sáu giờ ba mươi phút các ngày từ thứ hai đến thứ sáu.",
    ),
    (
        "Đề nghị các hộ gia đình mang theo sổ tiêm chủng và CCCD của bố hoặc mẹ.",
        "Đề nghị các hộ gia đình mang theo sổ tiêm chủng và căn cước công dân của bố hoặc mẹ.",
    ),
    (
        "Theo Thông tư 20/2021/TT-BYT, trẻ dưới 6 tuổi được tiêm miễn phí.",
        "Theo Thông tư hai mươi năm hai nghìn không trăm hai mươi mốt của Bộ Y tế, trẻ dưới sáu tuổi được tiêm "
        "miễn phí.",
    ),
    (
        "Hạn chót nộp thuế sử dụng đất phi nông nghiệp năm 2025 là ngày 31/10/2025.",
        "Hạn chót nộp thuế sử dụng đất phi nông nghiệp năm hai nghìn không trăm hai mươi lăm là ngày ba mươi mốt "
        "tháng mười năm hai nghìn không trăm hai mươi lăm.",
    ),
    (
        "Mức đóng BHYT hộ gia đình năm 2025: người thứ nhất đóng 842.400 đồng/năm; người thứ 2 đóng 70% mức đóng "
        "của người thứ nhất.",
        "Mức đóng bảo hiểm y tế hộ gia đình năm hai nghìn không trăm hai mươi lăm: người thứ nhất đóng tám trăm "
        "bốn mươi hai nghìn bốn trăm đồng một năm; người thứ hai đóng bảy mươi phần trăm mức đóng của người thứ "
        "nhất.",
    ),
    (
        "Mức lương cơ sở tăng từ 1.800.000 đồng lên 2.340.000 đồng/tháng kể từ ngày 1/7/2024.",
        "Mức lương cơ sở tăng từ một triệu tám trăm nghìn đồng lên hai triệu ba trăm bốn mươi nghìn đồng một "
        "tháng kể từ ngày mùng một tháng bảy năm hai nghìn không trăm hai mươi tư.",
    ),
    (
        "Hội nghị tiếp xúc cử tri với ĐBQH khóa XV sẽ diễn ra vào 8h00 sáng Chủ nhật, ngày 12/5/2024 tại Nhà văn "
        "hóa TDP số 3.",
        "Hội nghị tiếp xúc cử tri với đại biểu quốc hội khóa mười lăm sẽ diễn ra vào tám giờ sáng Chủ nhật, ngày "
        "mười hai tháng năm năm hai nghìn không trăm hai mươi tư tại Nhà văn hóa tổ dân phố số ba.",
    ),
    (
        "Cuộc bầu cử đại biểu Quốc hội khóa XVI và đại biểu HĐND các cấp nhiệm kỳ 2026-2031 được tổ chức vào Chủ "
        "nhật ngày 15/3/2026.",
        "Cuộc bầu cử đại biểu Quốc hội khóa mười sáu và đại biểu hội đồng nhân dân các cấp nhiệm kỳ hai nghìn "
        "không trăm hai mươi sáu đến hai nghìn không trăm ba mươi mốt được tổ chức vào Chủ nhật ngày mười lăm "
        "tháng ba năm hai nghìn không trăm hai mươi sáu.",
    ),
    (
        "Thời gian bỏ phiếu bắt đầu từ 7 giờ sáng đến 19 giờ cùng ngày.",
        "Thời gian bỏ phiếu bắt đầu từ bảy giờ sáng đến mười chín giờ cùng ngày.",
    ),
    (
        "Công dân nam sinh năm 2007 phải đến UBND phường đăng ký NVQS trước ngày 30/4.",
        "Công dân nam sinh năm hai nghìn không trăm linh bảy phải đến ủy ban nhân dân phường đăng ký nghĩa vụ "
        "quân sự trước ngày ba mươi tháng tư.",
    ),
    (
        "Độ tuổi gọi nhập ngũ từ đủ 18 tuổi đến hết 25 tuổi; công dân được đào tạo trình độ cao đẳng, đại học thì "
        "đến hết 27 tuổi.",
        "Độ tuổi gọi nhập ngũ từ đủ mười tám tuổi đến hết hai mươi lăm tuổi; công dân được đào tạo trình độ cao "
        "đẳng, đại học thì đến hết hai mươi bảy tuổi.",
    ),
    (
        "Năm 2025, phường giao chỉ tiêu 25 thanh niên lên đường nhập ngũ.",
        "Năm hai nghìn không trăm hai mươi lăm, phường giao chỉ tiêu hai mươi lăm thanh niên lên đường nhập ngũ.",
    ),
    (
        "Lễ giao nhận quân sẽ được tổ chức vào 7h00 ngày 13/2/2025 tại sân vận động quận.",
        "Lễ giao nhận quân sẽ được tổ chức vào bảy giờ ngày mười ba tháng hai năm hai nghìn không trăm hai mươi "
        "lăm tại sân vận động quận.",
    ),
    (
        "Thu phí vệ sinh môi trường năm 2025: 30.000 đồng/hộ/tháng đối với hộ gia đình; 50.000 đồng/tháng đối với "
        "hộ kinh doanh.",
        "Thu phí vệ sinh môi trường năm hai nghìn không trăm hai mươi lăm: ba mươi nghìn đồng một hộ một tháng "
        "đối với hộ gia đình; năm mươi nghìn đồng một tháng đối với hộ kinh doanh.",
    ),
    (
        "Chi bộ TDP 5 họp vào lúc 19h30 tối thứ 7 ngày 22/3 tại Nhà văn hóa.",
        "Chi bộ tổ dân phố năm họp vào lúc mười chín giờ ba mươi phút tối thứ bảy ngày hai mươi hai tháng ba tại "
        "Nhà văn hóa.",
    ),
    (
        "Ông Nguyễn Văn A, sinh năm 1965, trú tại số nhà 25/3 ngõ 102 phố Trương Định có đánh rơi 01 ví da màu "
        "đen, bên trong có CCCD và 2.500.000 đồng.",
        "Ông Nguyễn Văn A, sinh năm một nghìn chín trăm sáu mươi lăm, trú tại số nhà hai mươi lăm trên ba ngõ một "
        "trăm linh hai phố Trương Định có đánh rơi một ví da màu đen, bên trong có căn cước công dân và hai triệu "
        "năm trăm nghìn đồng.",
    ),
    (
        "Ai nhặt được xin liên hệ số điện thoại 0912.345.678 hoặc CA phường, xin cảm ơn.",
        "Ai nhặt được xin liên hệ số điện thoại không chín một hai ba bốn năm sáu bảy tám hoặc công an phường, "
        "xin cảm ơn.",
    ),
    (
        "Bão số 3 (tên quốc tế Yagi) đang hoạt động trên khu vực Bắc Biển Đông.",
        "Bão số ba, tên quốc tế Yagi, đang hoạt động trên khu vực Bắc Biển Đông.",
    ),
    (
        "Hồi 7 giờ ngày 6/9, vị trí tâm bão ở vào khoảng 20,5 độ Vĩ Bắc; 109,8 độ Kinh Đông, cách Quảng Ninh "
        "khoảng 250 km về phía Đông Đông Nam.",
        "Hồi bảy giờ ngày mùng sáu tháng chín, vị trí tâm bão ở vào khoảng hai mươi phẩy năm độ Vĩ Bắc; một trăm "
        "linh chín phẩy tám độ Kinh Đông, cách Quảng Ninh khoảng hai trăm năm mươi ki lô mét về phía Đông Đông "
        "Nam.",
    ),
    (
        "Sức gió mạnh nhất vùng gần tâm bão mạnh cấp 14-15 (150-183 km/h), giật trên cấp 17.",
        "Sức gió mạnh nhất vùng gần tâm bão mạnh cấp mười bốn đến mười lăm, một trăm năm mươi đến một trăm tám "
        "mươi ba ki lô mét một giờ, giật trên cấp mười bảy.",
    ),
    (
        "Dự báo trong 24 giờ tới, bão di chuyển theo hướng Tây Tây Bắc, mỗi giờ đi được 15-20 km.",
        "Dự báo trong hai mươi tư giờ tới, bão di chuyển theo hướng Tây Tây Bắc, mỗi giờ đi được mười lăm đến hai "
        "mươi ki lô mét.",
    ),
    (
        "Từ đêm 6/9 đến ngày 8/9, khu vực Hà Nội có mưa to đến rất to với tổng lượng mưa phổ biến 200-350mm, có "
        "nơi trên 400mm.",
        "Từ đêm ngày mùng sáu tháng chín đến ngày mùng tám tháng chín, khu vực Hà Nội có mưa to đến rất to với "
        "tổng lượng mưa phổ biến hai trăm đến ba trăm năm mươi mi li mét, có nơi trên bốn trăm mi li mét.",
    ),
    (
        "Mực nước sông Hồng tại Hà Nội lúc 7h ngày 10/9 là 9,5m, trên báo động 1 là 0,5m.",
        "Mực nước sông Hồng tại Hà Nội lúc bảy giờ ngày mùng mười tháng chín là chín phẩy năm mét, trên báo động "
        "một là không phẩy năm mét.",
    ),
    (
        "Nhiệt độ cao nhất phổ biến 37-39°C, có nơi trên 40 độ C; độ ẩm thấp nhất 45-50%.",
        "Nhiệt độ cao nhất phổ biến ba mươi bảy đến ba mươi chín độ xê, có nơi trên bốn mươi độ xê; độ ẩm thấp "
        "nhất bốn mươi lăm đến năm mươi phần trăm.",
    ),
    (
        "Đề nghị bà con không ra khỏi nhà trong thời gian bão đổ bộ, từ 10h-16h ngày 7/9.",
        "Đề nghị bà con không ra khỏi nhà trong thời gian bão đổ bộ, từ mười giờ đến mười sáu giờ ngày mùng bảy "
        "tháng chín.",
    ),
    (
        "Ban Chỉ huy PCTT và TKCN phường trực 24/24 giờ, số điện thoại trực ban: 024.3862.1234.",
        "Ban Chỉ huy phòng chống thiên tai và tìm kiếm cứu nạn phường trực hai mươi tư trên hai mươi tư giờ, số "
        "điện thoại trực ban: không hai bốn ba tám sáu hai một hai ba bốn.",
    ),
    ("Khi có cháy, hãy gọi ngay 114.", "Khi có cháy, hãy gọi ngay một một bốn."),
    (
        "Cấp cứu y tế gọi 115, báo tin về an ninh trật tự gọi 113.",
        "Cấp cứu y tế gọi một một năm, báo tin về an ninh trật tự gọi một một ba.",
    ),
    (
        "Tổng đài bảo vệ trẻ em quốc gia 111 hoạt động 24/7.",
        "Tổng đài bảo vệ trẻ em quốc gia một một một hoạt động hai mươi tư trên bảy.",
    ),
    (
        "Đường dây nóng của UBND phường: 1900 1234.",
        "Đường dây nóng của ủy ban nhân dân phường: một chín không không một hai ba bốn.",
    ),
    (
        "Trong 6 tháng đầu năm 2025, toàn phường ghi nhận 45 ca sốt xuất huyết, tăng 12 ca so với cùng kỳ.",
        "Trong sáu tháng đầu năm hai nghìn không trăm hai mươi lăm, toàn phường ghi nhận bốn mươi lăm ca sốt xuất "
        "huyết, tăng mười hai ca so với cùng kỳ.",
    ),
    (
        "Phun hóa chất diệt muỗi tại tổ 3, 5 và 7 vào sáng thứ 5 ngày 17/7.",
        "Phun hóa chất diệt muỗi tại tổ ba, năm và bảy vào sáng thứ năm ngày mười bảy tháng bảy.",
    ),
    (
        "Phường có 12/12 tổ dân phố đạt danh hiệu Tổ dân phố văn hóa năm 2024.",
        "Phường có mười hai trên mười hai tổ dân phố đạt danh hiệu Tổ dân phố văn hóa năm hai nghìn không trăm "
        "hai mươi tư.",
    ),
    (
        "Tỷ lệ người dân tham gia BHYT đạt 92,5%, vượt 1,5% so với kế hoạch.",
        "Tỷ lệ người dân tham gia bảo hiểm y tế đạt chín mươi hai phẩy năm phần trăm, vượt một phẩy năm phần trăm "
        "so với kế hoạch.",
    ),
    (
        "Tiêm vắc-xin Covid-19 mũi 3 cho người từ 18 tuổi trở lên.",
        "Tiêm vắc xin cô vít mười chín mũi ba cho người từ mười tám tuổi trở lên.",
    ),
    (
        "Giai đoạn 2021-2025, phường đã xây dựng 3,2 km đường giao thông nông thôn.",
        "Giai đoạn hai nghìn không trăm hai mươi mốt đến hai nghìn không trăm hai mươi lăm, phường đã xây dựng ba "
        "phẩy hai ki lô mét đường giao thông nông thôn.",
    ),
    (
        "Từ ngày 1/1/2025, Nghị định 168/2024/NĐ-CP quy định xử phạt vi phạm hành chính về trật tự, an toàn giao "
        "thông có hiệu lực.",
        "Từ ngày mùng một tháng một năm hai nghìn không trăm hai mươi lăm, Nghị định một trăm sáu mươi tám năm "
        "hai nghìn không trăm hai mươi tư của Chính phủ quy định xử phạt vi phạm hành chính về trật tự, an toàn "
        "giao thông có hiệu lực.",
    ),
    (
        "Người điều khiển xe máy vượt đèn đỏ bị phạt từ 4-6 triệu đồng.",
        "Người điều khiển xe máy vượt đèn đỏ bị phạt từ bốn đến sáu triệu đồng.",
    ),
    (
        "Người điều khiển ô tô có nồng độ cồn vượt quá 0,4 mg/l khí thở bị phạt từ 30-40 triệu đồng.",
        "Người điều khiển ô tô có nồng độ cồn vượt quá không phẩy bốn mi li gam trên lít khí thở bị phạt từ ba "
        "mươi đến bốn mươi triệu đồng.",
    ),
    (
        "Xe tải trên 10 tấn không được lưu thông trên QL5 từ 6h-9h và 16h-19h.",
        "Xe tải trên mười tấn không được lưu thông trên quốc lộ năm từ sáu giờ đến chín giờ và mười sáu giờ đến "
        "mười chín giờ.",
    ),
    (
        "Đoạn Quốc lộ 1A qua xã tạm cấm đường từ 22h00 ngày 5/6 đến 5h00 ngày 6/6.",
        "Đoạn Quốc lộ một a qua xã tạm cấm đường từ hai mươi hai giờ ngày mùng năm tháng sáu đến năm giờ ngày "
        "mùng sáu tháng sáu.",
    ),
    (
        "Theo Điều 5, khoản 2 Luật Phòng cháy và chữa cháy số 27/2001/QH10, mọi công dân có trách nhiệm phòng cháy.",
        "Theo Điều năm, khoản hai Luật Phòng cháy và chữa cháy số hai mươi bảy năm hai nghìn không trăm linh một "
        "của Quốc hội khóa mười, mọi công dân có trách nhiệm phòng cháy.",
    ),
    (
        "Thực hiện Chỉ thị số 16 của Thủ tướng Chính phủ, người dân hạn chế ra khỏi nhà.",
        "Thực hiện Chỉ thị số mười sáu của Thủ tướng Chính phủ, người dân hạn chế ra khỏi nhà.",
    ),
    (
        "Thực hiện Kế hoạch số 86/KH-UBND ngày 12/3/2025 của UBND quận về công tác CCHC năm 2025.",
        "Thực hiện Kế hoạch số tám mươi sáu ngày mười hai tháng ba năm hai nghìn không trăm hai mươi lăm của ủy "
        "ban nhân dân quận về công tác cải cách hành chính năm hai nghìn không trăm hai mươi lăm.",
    ),
    (
        "Quyết định số 123/QĐ-UBND ngày 5/2/2025 về việc ban hành quy chế làm việc.",
        "Quyết định số một trăm hai mươi ba của Ủy ban nhân dân ngày mùng năm tháng hai năm hai nghìn không trăm "
        "hai mươi lăm về việc ban hành quy chế làm việc.",
    ),
    (
        "Tuần lễ Quốc gia phòng chống HIV/AIDS từ ngày 10/11 đến ngày 10/12.",
        "Tuần lễ Quốc gia phòng chống hát i vê ết từ ngày mùng mười tháng mười một đến ngày mùng mười tháng mười hai.",
    ),
    (
        "Cúm A/H5N1 có nguy cơ lây sang người, bà con không giết mổ gia cầm ốm chết.",
        "Cúm a hát năm en nờ một có nguy cơ lây sang người, bà con không giết mổ gia cầm ốm chết.",
    ),
    (
        "Lịch tiếp công dân: T2, T4, T6 hàng tuần; sáng T7 trực giải quyết TTHC; CN nghỉ.",
        "Lịch tiếp công dân: thứ hai, thứ tư, thứ sáu hàng tuần; sáng thứ bảy trực giải quyết thủ tục hành chính; "
        "chủ nhật nghỉ.",
    ),
    (
        "Kết quả giải quyết hồ sơ TTHC quý IV/2024 đạt 98,7% đúng hạn.",
        "Kết quả giải quyết hồ sơ thủ tục hành chính quý bốn năm hai nghìn không trăm hai mươi tư đạt chín mươi "
        "tám phẩy bảy phần trăm đúng hạn.",
    ),
    (
        "Hội nghị tổng kết công tác năm 2024 và triển khai nhiệm vụ năm 2025 lúc 14h ngày 10/1.",
        "Hội nghị tổng kết công tác năm hai nghìn không trăm hai mươi tư và triển khai nhiệm vụ năm hai nghìn "
        "không trăm hai mươi lăm lúc mười bốn giờ ngày mùng mười tháng một.",
    ),
    (
        "Đại hội Đảng bộ phường lần thứ XIII, nhiệm kỳ 2025-2030.",
        "Đại hội Đảng bộ phường lần thứ mười ba, nhiệm kỳ hai nghìn không trăm hai mươi lăm đến hai nghìn không "
        "trăm ba mươi.",
    ),
    (
        "Đại hội Đoàn TNCS Hồ Chí Minh phường lần thứ IV thành công tốt đẹp.",
        "Đại hội Đoàn thanh niên cộng sản Hồ Chí Minh phường lần thứ tư thành công tốt đẹp.",
    ),
    (
        "Giải bóng đá thiếu niên hè 2025: đội TDP 2 giành giải nhất, TDP 7 đạt hạng 2.",
        "Giải bóng đá thiếu niên hè hai nghìn không trăm hai mươi lăm: đội tổ dân phố hai giành giải nhất, tổ dân "
        "phố bảy đạt hạng nhì.",
    ),
    (
        "Diện tích lúa vụ Xuân 2025 là 125,5 ha, năng suất ước đạt 62 tạ/ha.",
        "Diện tích lúa vụ Xuân hai nghìn không trăm hai mươi lăm là một trăm hai mươi lăm phẩy năm héc ta, năng "
        "suất ước đạt sáu mươi hai tạ một héc ta.",
    ),
    (
        "Mỗi hộ được hỗ trợ 10 kg gạo và 500k tiền mặt.",
        "Mỗi hộ được hỗ trợ mười ki lô gam gạo và năm trăm nghìn tiền mặt.",
    ),
    (
        "Đề nghị các hộ dân nộp tiền điện trước ngày 15 hàng tháng.",
        "Đề nghị các hộ dân nộp tiền điện trước ngày mười lăm hàng tháng.",
    ),
    (
        "Giá nước sinh hoạt bậc 1 (từ 0-10 m3) là 8.500 đồng/m3.",
        "Giá nước sinh hoạt bậc một, từ không đến mười mét khối, là tám nghìn năm trăm đồng một mét khối.",
    ),
    ("Khu vực hồ chứa có độ sâu trên 2m, cấm trẻ em tắm.", "Khu vực hồ chứa có độ sâu trên hai mét, cấm trẻ em tắm."),
    (
        "Nhiệt độ ngoài trời có thể lên tới 41°C, người dân hạn chế ra đường từ 11h đến 15h.",
        "Nhiệt độ ngoài trời có thể lên tới bốn mươi mốt độ xê, người dân hạn chế ra đường từ mười một giờ đến "
        "mười lăm giờ.",
    ),
    (
        "Sáng nay (10/9), mực nước sông Hồng tại Hà Nội đạt 10,2m.",
        "Sáng nay, ngày mùng mười tháng chín, mực nước sông Hồng tại Hà Nội đạt mười phẩy hai mét.",
    ),
    (
        "Ngày 27/7 là Ngày Thương binh - Liệt sĩ; kỷ niệm 78 năm (27/7/1947 - 27/7/2025).",
        "Ngày hai mươi bảy tháng bảy là Ngày Thương binh, Liệt sĩ; kỷ niệm bảy mươi tám năm, ngày hai mươi bảy "
        "tháng bảy năm một nghìn chín trăm bốn mươi bảy đến ngày hai mươi bảy tháng bảy năm hai nghìn không trăm "
        "hai mươi lăm.",
    ),
    (
        "Đón Tết Nguyên đán Ất Tỵ 2025, phường tổ chức chợ hoa từ 25 đến 30 tháng Chạp.",
        "Đón Tết Nguyên đán Ất Tỵ hai nghìn không trăm hai mươi lăm, phường tổ chức chợ hoa từ hai mươi lăm đến "
        "ba mươi tháng Chạp.",
    ),
    (
        "Lễ kỷ niệm 80 năm Cách mạng tháng Tám và Quốc khánh 2/9.",
        "Lễ kỷ niệm tám mươi năm Cách mạng tháng Tám và Quốc khánh mùng hai tháng chín.",
    ),
    (
        "Lịch cắt điện: từ 7h30 đến 17h00 thứ 3 (ngày 8/4/2025), khu vực tổ 12, 13, 14.",
        "Lịch cắt điện: từ bảy giờ ba mươi phút đến mười bảy giờ thứ ba, ngày mùng tám tháng tư năm hai nghìn "
        "không trăm hai mươi lăm, khu vực tổ mười hai, mười ba, mười bốn.",
    ),
    (
        "Liên hệ: đ/c Hùng - Chủ tịch UBND phường, ĐT: 0983 456 789.",
        "Liên hệ: đồng chí Hùng, Chủ tịch ủy ban nhân dân phường, điện thoại: không chín tám ba bốn năm sáu bảy "
        "tám chín.",
    ),
    (
        "Chi trả trợ cấp cho 1.234 đối tượng bảo trợ xã hội, tổng kinh phí 1,85 tỷ đồng.",
        "Chi trả trợ cấp cho một nghìn hai trăm ba mươi tư đối tượng bảo trợ xã hội, tổng kinh phí một phẩy tám "
        "mươi lăm tỷ đồng.",
    ),
    (
        "Thu nhập bình quân đầu người đạt 72 triệu đồng/người/năm.",
        "Thu nhập bình quân đầu người đạt bảy mươi hai triệu đồng một người một năm.",
    ),
    (
        "Toàn phường có 2.345 hộ với 8.912 nhân khẩu.",
        "Toàn phường có hai nghìn ba trăm bốn mươi lăm hộ với tám nghìn chín trăm mười hai nhân khẩu.",
    ),
    ("Thời hạn đăng ký là 30 ngày kể từ ngày 1/6.", "Thời hạn đăng ký là ba mươi ngày kể từ ngày mùng một tháng sáu."),
    ("Số người mắc mới tăng 2,5 lần so với tuần trước.", "Số người mắc mới tăng hai phẩy năm lần so với tuần trước."),
    (
        "Lượng mưa đo được tại trạm Láng trong 3 giờ qua là 125,6 mm.",
        "Lượng mưa đo được tại trạm Láng trong ba giờ qua là một trăm hai mươi lăm phẩy sáu mi li mét.",
    ),
    (
        "Gió Đông Bắc cấp 6, giật cấp 7-8; biển động mạnh, sóng cao 2-4m.",
        "Gió Đông Bắc cấp sáu, giật cấp bảy đến tám; biển động mạnh, sóng cao hai đến bốn mét.",
    ),
    (
        "Vùng nguy hiểm trong 24h tới: từ vĩ tuyến 17,0N đến 21,0N; phía Tây kinh tuyến 112,0E.",
        "Vùng nguy hiểm trong hai mươi tư giờ tới: từ vĩ tuyến mười bảy phẩy không độ Bắc đến hai mươi mốt phẩy "
        "không độ Bắc; phía Tây kinh tuyến một trăm mười hai phẩy không độ Đông.",
    ),
    (
        "Nhân dịp 30/4 và 1/5, phường tổ chức treo cờ Tổ quốc từ ngày 28/4 đến hết ngày 2/5.",
        "Nhân dịp ngày ba mươi tháng tư và ngày mùng một tháng năm, phường tổ chức treo cờ Tổ quốc từ ngày hai "
        "mươi tám tháng tư đến hết ngày mùng hai tháng năm.",
    ),
    (
        "Học sinh lớp 9 thi vào lớp 10 THPT năm học 2025-2026 vào ngày 7 và 8/6.",
        "Học sinh lớp chín thi vào lớp mười trung học phổ thông năm học hai nghìn không trăm hai mươi lăm đến hai "
        "nghìn không trăm hai mươi sáu vào ngày mùng bảy và mùng tám tháng sáu.",
    ),
    (
        "Trường Tiểu học Kim Liên tuyển sinh lớp 1 từ ngày 1 đến 15/7.",
        "Trường Tiểu học Kim Liên tuyển sinh lớp một từ ngày mùng một đến mười lăm tháng bảy.",
    ),
    (
        "Hạn nộp hồ sơ xét tuyển trực tuyến tại tuyensinh.hanoi.edu.vn trước 17h00 ngày 20/6.",
        "Hạn nộp hồ sơ xét tuyển trực tuyến tại tuyensinh chấm hanoi chấm edu chấm vn trước mười bảy giờ ngày hai "
        "mươi tháng sáu.",
    ),
    (
        "Bà con truy cập Cổng dịch vụ công quốc gia dichvucong.gov.vn để nộp hồ sơ.",
        "Bà con truy cập Cổng dịch vụ công quốc gia dichvucong chấm gov chấm vn để nộp hồ sơ.",
    ),
    (
        "Mọi thắc mắc xin gửi về email ubndphuongkimlien@hanoi.gov.vn.",
        "Mọi thắc mắc xin gửi về email ubndphuongkimlien a còng hanoi chấm gov chấm vn.",
    ),
    (
        "Tổ chức thi công tuyến đường dài 1,2km, rộng 7,5m.",
        "Tổ chức thi công tuyến đường dài một phẩy hai ki lô mét, rộng bảy phẩy năm mét.",
    ),
    ("Xe cứu hỏa đến hiện trường sau 7 phút.", "Xe cứu hỏa đến hiện trường sau bảy phút."),
    (
        "Trong ngày 14/9, xảy ra 3 vụ cháy, không có thiệt hại về người.",
        "Trong ngày mười bốn tháng chín, xảy ra ba vụ cháy, không có thiệt hại về người.",
    ),
    (
        "Từ 0h ngày 1/7/2025, phường thực hiện mô hình chính quyền địa phương 2 cấp.",
        "Từ không giờ ngày mùng một tháng bảy năm hai nghìn không trăm hai mươi lăm, phường thực hiện mô hình "
        "chính quyền địa phương hai cấp.",
    ),
    (
        "Ban hành kèm theo Quyết định số 1234/QĐ-UBND ngày 28/12/2024 của UBND TP Hà Nội.",
        "Ban hành kèm theo Quyết định số một nghìn hai trăm ba mươi tư ngày hai mươi tám tháng mười hai năm hai "
        "nghìn không trăm hai mươi tư của ủy ban nhân dân thành phố Hà Nội.",
    ),
    (
        "Công dân sinh từ ngày 01/01/2007 đến ngày 31/12/2007 đến đăng ký.",
        "Công dân sinh từ ngày mùng một tháng một năm hai nghìn không trăm linh bảy đến ngày ba mươi mốt tháng "
        "mười hai năm hai nghìn không trăm linh bảy đến đăng ký.",
    ),
    (
        "Nghỉ Tết Dương lịch 2025 từ thứ 4 ngày 1/1/2025, 01 ngày.",
        "Nghỉ Tết Dương lịch hai nghìn không trăm hai mươi lăm từ thứ tư ngày mùng một tháng một năm hai nghìn "
        "không trăm hai mươi lăm, một ngày.",
    ),
    (
        "Nghỉ lễ 30/4-1/5 năm 2025 kéo dài 5 ngày, từ thứ 7 (26/4) đến hết thứ 5 (1/5).",
        "Nghỉ lễ ngày ba mươi tháng tư đến ngày mùng một tháng năm năm hai nghìn không trăm hai mươi lăm kéo dài "
        "năm ngày, từ thứ bảy, ngày hai mươi sáu tháng tư, đến hết thứ năm, ngày mùng một tháng năm.",
    ),
    (
        "Khuyến cáo người dân không đốt vàng mã, đốt rơm rạ; số vụ cháy giảm 15,3% so với năm 2023.",
        "Khuyến cáo người dân không đốt vàng mã, đốt rơm rạ; số vụ cháy giảm mười lăm phẩy ba phần trăm so với "
        "năm hai nghìn không trăm hai mươi ba.",
    ),
    (
        "Nhà văn hóa khu dân cư số 2 có sức chứa 200 người.",
        "Nhà văn hóa khu dân cư số hai có sức chứa hai trăm người.",
    ),
    (
        "Diễn tập PCCC tại chung cư CT3 vào 8h30 ngày 25/10.",
        "Diễn tập phòng cháy chữa cháy tại chung cư xê tê ba vào tám giờ ba mươi phút ngày hai mươi lăm tháng mười.",
    ),
    (
        "Hạn nộp tờ khai thuế quý I/2025 là ngày 30/4/2025.",
        "Hạn nộp tờ khai thuế quý một năm hai nghìn không trăm hai mươi lăm là ngày ba mươi tháng tư năm hai "
        "nghìn không trăm hai mươi lăm.",
    ),
    (
        "Hộ kinh doanh có doanh thu từ 100 triệu đồng/năm trở xuống không phải nộp thuế GTGT và thuế TNCN.",
        "Hộ kinh doanh có doanh thu từ một trăm triệu đồng một năm trở xuống không phải nộp thuế giá trị gia tăng "
        "và thuế thu nhập cá nhân.",
    ),
    (
        "Phạt tiền từ 800.000 đồng đến 1.000.000 đồng đối với hành vi không đội mũ bảo hiểm.",
        "Phạt tiền từ tám trăm nghìn đồng đến một triệu đồng đối với hành vi không đội mũ bảo hiểm.",
    ),
    (
        "Mở đợt cao điểm tấn công, trấn áp tội phạm từ 15/11/2024 đến 15/2/2025.",
        "Mở đợt cao điểm tấn công, trấn áp tội phạm từ ngày mười lăm tháng mười một năm hai nghìn không trăm hai "
        "mươi tư đến ngày mười lăm tháng hai năm hai nghìn không trăm hai mươi lăm.",
    ),
    ("Tiêm phòng dại cho chó, mèo: 50.000 đồng/liều.", "Tiêm phòng dại cho chó, mèo: năm mươi nghìn đồng một liều."),
    (
        "Tiêm vắc xin phòng bệnh tay chân miệng, cúm mùa cho trẻ từ 6 tháng tuổi.",
        "Tiêm vắc xin phòng bệnh tay chân miệng, cúm mùa cho trẻ từ sáu tháng tuổi.",
    ),
    (
        "Phát hiện 02 ổ dịch SXH tại tổ 15 và tổ 18.",
        "Phát hiện hai ổ dịch sốt xuất huyết tại tổ mười lăm và tổ mười tám.",
    ),
    (
        "Từ 1/7/2025, cấp lại CCCD mất phí 70.000 đồng; đổi thẻ hết hạn miễn phí.",
        "Từ ngày mùng một tháng bảy năm hai nghìn không trăm hai mươi lăm, cấp lại căn cước công dân mất phí bảy "
        "mươi nghìn đồng; đổi thẻ hết hạn miễn phí.",
    ),
    (
        "Làm thủ tục cấp CCCD cho trẻ dưới 14 tuổi tại trụ sở CA phường.",
        "Làm thủ tục cấp căn cước công dân cho trẻ dưới mười bốn tuổi tại trụ sở công an phường.",
    ),
    (
        "Triển khai thu thập, cập nhật dữ liệu dân cư trên ứng dụng VNeID mức độ 2.",
        "Triển khai thu thập, cập nhật dữ liệu dân cư trên ứng dụng vê en e ai đi mức độ hai.",
    ),
    (
        "Cắt nước từ 22 giờ ngày 10/6 đến 4 giờ ngày 11/6 để sửa chữa đường ống D300.",
        "Cắt nước từ hai mươi hai giờ ngày mùng mười tháng sáu đến bốn giờ ngày mười một tháng sáu để sửa chữa "
        "đường ống dê ba trăm.",
    ),
    (
        "Điện lực Hai Bà Trưng thông báo ngừng cung cấp điện từ 8h00 đến 12h00 ngày 18/6/2025.",
        "Điện lực Hai Bà Trưng thông báo ngừng cung cấp điện từ tám giờ đến mười hai giờ ngày mười tám tháng sáu "
        "năm hai nghìn không trăm hai mươi lăm.",
    ),
    (
        "Tổ chức lễ ra quân Tháng thanh niên năm 2025 vào hồi 7h30, Chủ nhật ngày 2/3/2025.",
        "Tổ chức lễ ra quân Tháng thanh niên năm hai nghìn không trăm hai mươi lăm vào hồi bảy giờ ba mươi phút, "
        "Chủ nhật ngày mùng hai tháng ba năm hai nghìn không trăm hai mươi lăm.",
    ),
    (
        "Cuộc thi chạy 5km hưởng ứng Ngày chạy Olympic vì sức khỏe toàn dân.",
        "Cuộc thi chạy năm ki lô mét hưởng ứng Ngày chạy Olympic vì sức khỏe toàn dân.",
    ),
    (
        "Khai giảng lớp học bơi miễn phí cho trẻ từ 6-14 tuổi, mỗi lớp 20 em, từ 9/6 đến 30/6.",
        "Khai giảng lớp học bơi miễn phí cho trẻ từ sáu đến mười bốn tuổi, mỗi lớp hai mươi em, từ ngày mùng chín "
        "tháng sáu đến ngày ba mươi tháng sáu.",
    ),
    (
        "Trong năm 2024, phường đã trao 15 nhà Đại đoàn kết, trị giá 50 triệu đồng/nhà.",
        "Trong năm hai nghìn không trăm hai mươi tư, phường đã trao mười lăm nhà Đại đoàn kết, trị giá năm mươi "
        "triệu đồng một nhà.",
    ),
    (
        "Ủng hộ đồng bào bị thiệt hại do bão số 3 gây ra, tổng số tiền quyên góp được là 325.500.000 đồng.",
        "Ủng hộ đồng bào bị thiệt hại do bão số ba gây ra, tổng số tiền quyên góp được là ba trăm hai mươi lăm "
        "triệu năm trăm nghìn đồng.",
    ),
    (
        "Ban vận động cứu trợ phường tiếp nhận ủng hộ từ 7h30-17h hàng ngày.",
        "Ban vận động cứu trợ phường tiếp nhận ủng hộ từ bảy giờ ba mươi phút đến mười bảy giờ hàng ngày.",
    ),
    (
        "Số tài khoản 1500201234567 tại Agribank chi nhánh Hai Bà Trưng.",
        "Số tài khoản một năm không không hai không một hai ba bốn năm sáu bảy tại Agribank chi nhánh Hai Bà Trưng.",
    ),
    (
        "Sáng 12/5/2025, tại Hội trường UBND phường đã diễn ra Hội nghị sơ kết 6 tháng.",
        "Sáng ngày mười hai tháng năm năm hai nghìn không trăm hai mươi lăm, tại Hội trường ủy ban nhân dân "
        "phường đã diễn ra Hội nghị sơ kết sáu tháng.",
    ),
    (
        "Phường xếp thứ 3/12 phường của quận về chỉ số CCHC.",
        "Phường xếp thứ ba trên mười hai phường của quận về chỉ số cải cách hành chính.",
    ),
    ("Giảm 50% lệ phí trước bạ.", "Giảm năm mươi phần trăm lệ phí trước bạ."),
    (
        "Xe có tải trọng từ 2,5 tấn trở lên cấm đi vào từ 6h-21h.",
        "Xe có tải trọng từ hai phẩy năm tấn trở lên cấm đi vào từ sáu giờ đến hai mươi mốt giờ.",
    ),
    ("Tốc độ tối đa 40km/h trong khu dân cư.", "Tốc độ tối đa bốn mươi ki lô mét một giờ trong khu dân cư."),
    (
        "Đã có 3.512/3.600 hộ đăng ký, đạt 97,56%.",
        "Đã có ba nghìn năm trăm mười hai trên ba nghìn sáu trăm hộ đăng ký, đạt chín mươi bảy phẩy năm mươi sáu "
        "phần trăm.",
    ),
    ("Ước tính có khoảng 1/3 số hộ chưa nộp.", "Ước tính có khoảng một phần ba số hộ chưa nộp."),
    (
        "Lũ trên sông Thao tại Yên Bái lên mức 32,5m, trên BĐ3 0,8m.",
        "Lũ trên sông Thao tại Yên Bái lên mức ba mươi hai phẩy năm mét, trên báo động ba không phẩy tám mét.",
    ),
    ("Báo động cấp 3, mực nước 11,5m", "Báo động cấp ba, mực nước mười một phẩy năm mét"),
    (
        "Tin áp thấp nhiệt đới: hồi 13h ngày 15/10, vị trí tâm ATNĐ ở vào khoảng 16,5°N; 112,3°E.",
        "Tin áp thấp nhiệt đới: hồi mười ba giờ ngày mười lăm tháng mười, vị trí tâm áp thấp nhiệt đới ở vào "
        "khoảng mười sáu phẩy năm độ Vĩ Bắc; một trăm mười hai phẩy ba độ Kinh Đông.",
    ),
    (
        "Mưa lớn có khả năng gây lũ quét, sạt lở đất; cảnh báo cấp độ rủi ro thiên tai cấp 3.",
        "Mưa lớn có khả năng gây lũ quét, sạt lở đất; cảnh báo cấp độ rủi ro thiên tai cấp ba.",
    ),
    ("Động đất 4,5 độ richter tại Kon Tum", "Động đất bốn phẩy năm độ richter tại Kon Tum"),
    ("Chỉ số tia UV ở mức 8-10, nguy cơ gây hại cao.", "Chỉ số tia u vê ở mức tám đến mười, nguy cơ gây hại cao."),
    (
        "Chỉ số chất lượng không khí AQI 150-200, mức kém.",
        "Chỉ số chất lượng không khí a quy i một trăm năm mươi đến hai trăm, mức kém.",
    ),
    ("Bụi mịn PM2.5 vượt ngưỡng.", "Bụi mịn pê em mờ hai phẩy năm vượt ngưỡng."),
    (
        'Cuộc thi "Tìm hiểu Hiến pháp năm 2013" từ 1/9 đến 30/9/2025.',
        "Cuộc thi Tìm hiểu Hiến pháp năm hai nghìn không trăm mười ba từ ngày mùng một tháng chín đến ngày ba "
        "mươi tháng chín năm hai nghìn không trăm hai mươi lăm.",
    ),
    (
        "Sáng mai, 7h ngày 15/9, khai giảng năm học mới 2025 - 2026.",
        "Sáng mai, bảy giờ ngày mười lăm tháng chín, khai giảng năm học mới hai nghìn không trăm hai mươi lăm đến "
        "hai nghìn không trăm hai mươi sáu.",
    ),
    (
        'Hưởng ứng "Giờ Trái đất" năm 2025, tắt đèn từ 20h30 đến 21h30 ngày 22/3.',
        "Hưởng ứng Giờ Trái đất năm hai nghìn không trăm hai mươi lăm, tắt đèn từ hai mươi giờ ba mươi phút đến "
        "hai mươi mốt giờ ba mươi phút ngày hai mươi hai tháng ba.",
    ),
    (
        "Tháng hành động vì an toàn thực phẩm từ 15/4 đến 15/5.",
        "Tháng hành động vì an toàn thực phẩm từ ngày mười lăm tháng tư đến ngày mười lăm tháng năm.",
    ),
    (
        "Kiểm tra 50 cơ sở, xử phạt 05 cơ sở với số tiền 12.500.000 đồng.",
        "Kiểm tra năm mươi cơ sở, xử phạt năm cơ sở với số tiền mười hai triệu năm trăm nghìn đồng.",
    ),
    ("Mã QR, zalo 0912345678", "Mã cu a, zalo không chín một hai ba bốn năm sáu bảy tám"),
    (
        "Thi tuyển công chức năm 2025: chỉ tiêu 5 người, nộp hồ sơ đến 17h ngày 30/6.",
        "Thi tuyển công chức năm hai nghìn không trăm hai mươi lăm: chỉ tiêu năm người, nộp hồ sơ đến mười bảy "
        "giờ ngày ba mươi tháng sáu.",
    ),
    (
        "Anh Trần Văn B, sinh ngày 12/8/1990, có đánh rơi CCCD số 001090012345 cùng giấy đăng ký xe máy biển số "
        "29B1-234.56.",
        "Anh Trần Văn B, sinh ngày mười hai tháng tám năm một nghìn chín trăm chín mươi, có đánh rơi căn cước "
        "công dân số không không một không chín không không một hai ba bốn năm cùng giấy đăng ký xe máy biển số "
        "hai chín bê một hai ba bốn năm sáu.",
    ),
    (
        "Ai nhặt được xin liên hệ Công an phường, SĐT: 0243.976.1234 hoặc 0988.123.456.",
        "Ai nhặt được xin liên hệ Công an phường, số điện thoại: không hai bốn ba chín bảy sáu một hai ba bốn "
        "hoặc không chín tám tám một hai ba bốn năm sáu.",
    ),
    (
        "Kính mời đại diện 01 hộ gia đình đến dự họp vào 19h00 ngày 18/3/2025 (thứ 3) tại Nhà văn hóa tổ 4.",
        "Kính mời đại diện một hộ gia đình đến dự họp vào mười chín giờ ngày mười tám tháng ba năm hai nghìn "
        "không trăm hai mươi lăm, thứ ba, tại Nhà văn hóa tổ bốn.",
    ),
    (
        "Danh sách cử tri được niêm yết từ ngày 13/2/2026 tại 12 khu vực bỏ phiếu.",
        "Danh sách cử tri được niêm yết từ ngày mười ba tháng hai năm hai nghìn không trăm hai mươi sáu tại mười "
        "hai khu vực bỏ phiếu.",
    ),
    (
        "Mỗi cử tri chỉ được bầu tối đa 3 đại biểu HĐND phường trong tổng số 5 ứng cử viên.",
        "Mỗi cử tri chỉ được bầu tối đa ba đại biểu hội đồng nhân dân phường trong tổng số năm ứng cử viên.",
    ),
    (
        "Phường có 9.215 cử tri, chia thành 15 khu vực bỏ phiếu.",
        "Phường có chín nghìn hai trăm mười lăm cử tri, chia thành mười lăm khu vực bỏ phiếu.",
    ),
    (
        "Lịch khám tuyển NVQS: 7h ngày 5/12 tại Trung tâm Y tế quận.",
        "Lịch khám tuyển nghĩa vụ quân sự: bảy giờ ngày mùng năm tháng mười hai tại Trung tâm Y tế quận.",
    ),
    (
        "Công dân có giấy gọi khám sức khỏe mang theo CCCD và giấy gọi, có mặt trước 6h30.",
        "Công dân có giấy gọi khám sức khỏe mang theo căn cước công dân và giấy gọi, có mặt trước sáu giờ ba mươi "
        "phút.",
    ),
    (
        "Từ ngày 15/7 đến 15/8/2025, phường tổ chức chiến dịch tiêm chủng vắc xin sởi - rubella.",
        "Từ ngày mười lăm tháng bảy đến ngày mười lăm tháng tám năm hai nghìn không trăm hai mươi lăm, phường tổ "
        "chức chiến dịch tiêm chủng vắc xin sởi, rubella.",
    ),
    (
        "Chiến dịch cao điểm diệt bọ gậy phòng chống SXH từ 9-14/6.",
        "Chiến dịch cao điểm diệt bọ gậy phòng chống sốt xuất huyết từ ngày mùng chín đến mười bốn tháng sáu.",
    ),
    (
        "Từ đầu năm đến nay, thành phố ghi nhận 3.024 ca mắc SXH, 2 ca tử vong.",
        "Từ đầu năm đến nay, thành phố ghi nhận ba nghìn không trăm hai mươi tư ca mắc sốt xuất huyết, hai ca tử vong.",
    ),
    (
        "Người dân đang ở nhà cao tầng cần trang bị bình chữa cháy, mặt nạ phòng độc.",
        "Người dân đang ở nhà cao tầng cần trang bị bình chữa cháy, mặt nạ phòng độc.",
    ),
    ("Tổ liên gia an toàn PCCC số 7 gồm 15 hộ.", "Tổ liên gia an toàn phòng cháy chữa cháy số bảy gồm mười lăm hộ."),
    (
        "Cháy nhà dân lúc 2h sáng 14/10 tại ngõ 72 phố Nguyễn Trãi, thiệt hại khoảng 500 triệu đồng.",
        "Cháy nhà dân lúc hai giờ sáng ngày mười bốn tháng mười tại ngõ bảy mươi hai phố Nguyễn Trãi, thiệt hại "
        "khoảng năm trăm triệu đồng.",
    ),
    (
        "Nghiêm cấm sử dụng pháo nổ; vi phạm bị phạt từ 10-20 triệu đồng theo Nghị định 144/2021/NĐ-CP.",
        "Nghiêm cấm sử dụng pháo nổ; vi phạm bị phạt từ mười đến hai mươi triệu đồng theo Nghị định một trăm bốn "
        "mươi tư năm hai nghìn không trăm hai mươi mốt của Chính phủ.",
    ),
    (
        "Từ 1/1/2025, người đi xe máy không đội mũ bảo hiểm bị phạt 400.000 - 600.000 đồng.",
        "Từ ngày mùng một tháng một năm hai nghìn không trăm hai mươi lăm, người đi xe máy không đội mũ bảo hiểm "
        "bị phạt bốn trăm nghìn đến sáu trăm nghìn đồng.",
    ),
    (
        "Phân luồng giao thông trên đường Giải Phóng từ 21h ngày 15/8 đến 5h ngày 16/8.",
        "Phân luồng giao thông trên đường Giải Phóng từ hai mươi mốt giờ ngày mười lăm tháng tám đến năm giờ ngày "
        "mười sáu tháng tám.",
    ),
    (
        "Tạm dừng lưu thông xe có tải trọng trên 3,5 tấn qua cầu Chương Dương.",
        "Tạm dừng lưu thông xe có tải trọng trên ba phẩy năm tấn qua cầu Chương Dương.",
    ),
    (
        "Thu quỹ phòng chống thiên tai năm 2025: lao động từ 18-60 tuổi (nam), 18-55 tuổi (nữ) đóng 20.000 "
        "đồng/người/năm.",
        "Thu quỹ phòng chống thiên tai năm hai nghìn không trăm hai mươi lăm: lao động từ mười tám đến sáu mươi "
        "tuổi, nam, mười tám đến năm mươi lăm tuổi, nữ, đóng hai mươi nghìn đồng một người một năm.",
    ),
    (
        "Mức thu Quỹ Đền ơn đáp nghĩa: tối thiểu 1 ngày lương đối với cán bộ, công chức.",
        "Mức thu Quỹ Đền ơn đáp nghĩa: tối thiểu một ngày lương đối với cán bộ, công chức.",
    ),
    (
        "Lệ phí cấp bản sao trích lục hộ tịch là 8.000 đồng/bản.",
        "Lệ phí cấp bản sao trích lục hộ tịch là tám nghìn đồng một bản.",
    ),
    (
        "Thời hạn nộp tiền thuê đất kỳ 2 năm 2025 chậm nhất là ngày 31/10.",
        "Thời hạn nộp tiền thuê đất kỳ hai năm hai nghìn không trăm hai mươi lăm chậm nhất là ngày ba mươi mốt "
        "tháng mười.",
    ),
    (
        "Người nộp thuế có thể nộp qua ứng dụng eTax Mobile hoặc tại Chi cục Thuế khu vực I.",
        "Người nộp thuế có thể nộp qua ứng dụng eTax Mobile hoặc tại Chi cục Thuế khu vực một.",
    ),
    (
        "Đăng ký thường trú trực tuyến qua Cổng DVC quốc gia hoặc ứng dụng VNeID.",
        "Đăng ký thường trú trực tuyến qua Cổng dịch vụ công quốc gia hoặc ứng dụng vê en e ai đi.",
    ),
    (
        "Phường thực hiện tiếp nhận hồ sơ TTHC theo cơ chế một cửa, 100% hồ sơ giải quyết đúng hạn.",
        "Phường thực hiện tiếp nhận hồ sơ thủ tục hành chính theo cơ chế một cửa, một trăm phần trăm hồ sơ giải "
        "quyết đúng hạn.",
    ),
    (
        "Thời gian làm việc: sáng từ 8h đến 12h, chiều từ 13h30 đến 17h30, từ thứ 2 đến thứ 6.",
        "Thời gian làm việc: sáng từ tám giờ đến mười hai giờ, chiều từ mười ba giờ ba mươi phút đến mười bảy giờ "
        "ba mươi phút, từ thứ hai đến thứ sáu.",
    ),
    (
        "Bộ phận một cửa làm việc sáng thứ 7 từ 8h-11h30.",
        "Bộ phận một cửa làm việc sáng thứ bảy từ tám giờ đến mười một giờ ba mươi phút.",
    ),
    (
        'Tổ chức ngày hội hiến máu tình nguyện "Giọt hồng yêu thương" năm 2025 vào ngày 20/7.',
        "Tổ chức ngày hội hiến máu tình nguyện Giọt hồng yêu thương năm hai nghìn không trăm hai mươi lăm vào "
        "ngày hai mươi tháng bảy.",
    ),
    ("Chỉ tiêu tiếp nhận 250 đơn vị máu.", "Chỉ tiêu tiếp nhận hai trăm năm mươi đơn vị máu."),
    (
        'Lễ phát động Tháng hành động vì trẻ em năm 2025 với chủ đề "Hành động thiết thực, ưu tiên nguồn lực cho '
        'trẻ em".',
        "Lễ phát động Tháng hành động vì trẻ em năm hai nghìn không trăm hai mươi lăm với chủ đề Hành động thiết "
        "thực, ưu tiên nguồn lực cho trẻ em.",
    ),
    (
        "Ngày hội Đại đoàn kết toàn dân tộc năm 2025 sẽ được tổ chức tại 18/18 khu dân cư.",
        "Ngày hội Đại đoàn kết toàn dân tộc năm hai nghìn không trăm hai mươi lăm sẽ được tổ chức tại mười tám "
        "trên mười tám khu dân cư.",
    ),
    (
        "Nhân kỷ niệm 95 năm Ngày truyền thống MTTQ Việt Nam (18/11/1930 - 18/11/2025).",
        "Nhân kỷ niệm chín mươi lăm năm Ngày truyền thống mặt trận tổ quốc Việt Nam, ngày mười tám tháng mười một "
        "năm một nghìn chín trăm ba mươi đến ngày mười tám tháng mười một năm hai nghìn không trăm hai mươi lăm.",
    ),
    (
        "Chúc mừng 1.245 học sinh đạt danh hiệu học sinh giỏi năm học 2024-2025.",
        "Chúc mừng một nghìn hai trăm bốn mươi lăm học sinh đạt danh hiệu học sinh giỏi năm học hai nghìn không "
        "trăm hai mươi tư đến hai nghìn không trăm hai mươi lăm.",
    ),
    (
        "Trường THCS Kim Liên đạt 3 giải nhất, 5 giải nhì cấp thành phố.",
        "Trường trung học cơ sở Kim Liên đạt ba giải nhất, năm giải nhì cấp thành phố.",
    ),
    (
        "Kỳ thi tốt nghiệp THPT năm 2025 diễn ra ngày 26 và 27/6.",
        "Kỳ thi tốt nghiệp trung học phổ thông năm hai nghìn không trăm hai mươi lăm diễn ra ngày hai mươi sáu và "
        "hai mươi bảy tháng sáu.",
    ),
    (
        "Trẻ sinh năm 2019 vào lớp 1, trẻ sinh năm 2020 vào mẫu giáo 5 tuổi.",
        "Trẻ sinh năm hai nghìn không trăm mười chín vào lớp một, trẻ sinh năm hai nghìn không trăm hai mươi vào "
        "mẫu giáo năm tuổi.",
    ),
    (
        "Tăng cường công tác quản lý nhà nước về ANTT, bảo đảm TTATXH dịp Tết Nguyên đán Bính Ngọ 2026.",
        "Tăng cường công tác quản lý nhà nước về an ninh trật tự, bảo đảm trật tự an toàn xã hội dịp Tết Nguyên "
        "đán Bính Ngọ hai nghìn không trăm hai mươi sáu.",
    ),
    (
        "Trong tháng 8, CA phường đã phát hiện, xử lý 12 vụ/25 đối tượng vi phạm.",
        "Trong tháng tám, công an phường đã phát hiện, xử lý mười hai vụ với hai mươi lăm đối tượng vi phạm.",
    ),
    (
        "Tiếp nhận 142 hồ sơ đăng ký tạm trú, 37 hồ sơ thường trú.",
        "Tiếp nhận một trăm bốn mươi hai hồ sơ đăng ký tạm trú, ba mươi bảy hồ sơ thường trú.",
    ),
    (
        "Đề nghị các hộ đăng ký lưu trú cho người đến ở trước 23h.",
        "Đề nghị các hộ đăng ký lưu trú cho người đến ở trước hai mươi ba giờ.",
    ),
    (
        'Phát động phong trào "Toàn dân bảo vệ an ninh Tổ quốc" năm 2025.',
        "Phát động phong trào Toàn dân bảo vệ an ninh Tổ quốc năm hai nghìn không trăm hai mươi lăm.",
    ),
    (
        "Cảnh báo thủ đoạn lừa đảo qua điện thoại: giả danh CA, yêu cầu chuyển tiền vào tài khoản.",
        "Cảnh báo thủ đoạn lừa đảo qua điện thoại: giả danh công an, yêu cầu chuyển tiền vào tài khoản.",
    ),
    (
        "Không cung cấp mã OTP cho bất kỳ ai; phát hiện lừa đảo báo ngay cho CA phường qua số 069.219.4321.",
        "Không cung cấp mã o tê pê cho bất kỳ ai; phát hiện lừa đảo báo ngay cho công an phường qua số không sáu "
        "chín hai một chín bốn ba hai một.",
    ),
    (
        "Dự báo từ ngày 20-22/1, không khí lạnh tăng cường, nhiệt độ thấp nhất ở Hà Nội 9-11 độ C.",
        "Dự báo từ ngày hai mươi đến hai mươi hai tháng một, không khí lạnh tăng cường, nhiệt độ thấp nhất ở Hà "
        "Nội chín đến mười một độ xê.",
    ),
    (
        "Trời nắng nóng gay gắt, nhiệt độ cao nhất 38-40°C; chỉ số UV ở mức nguy cơ gây hại rất cao.",
        "Trời nắng nóng gay gắt, nhiệt độ cao nhất ba mươi tám đến bốn mươi độ xê; chỉ số u vê ở mức nguy cơ gây "
        "hại rất cao.",
    ),
    (
        "Lúc 10h00 ngày 17/9, bão số 4 cách đảo Cồn Cỏ khoảng 90km về phía Đông.",
        "Lúc mười giờ ngày mười bảy tháng chín, bão số bốn cách đảo Cồn Cỏ khoảng chín mươi ki lô mét về phía Đông.",
    ),
    ("Cấp độ rủi ro thiên tai do bão: cấp 4.", "Cấp độ rủi ro thiên tai do bão: cấp bốn."),
    (
        "Khu vực Bắc Bộ có mưa to, lượng mưa phổ biến 100-150mm, có nơi trên 250mm.",
        "Khu vực Bắc Bộ có mưa to, lượng mưa phổ biến một trăm đến một trăm năm mươi mi li mét, có nơi trên hai "
        "trăm năm mươi mi li mét.",
    ),
    (
        "Cảnh báo lũ quét, sạt lở đất tại 3 tổ dân phố ven sông.",
        "Cảnh báo lũ quét, sạt lở đất tại ba tổ dân phố ven sông.",
    ),
    (
        "Lúc 19h ngày 11/9, mực nước sông Hồng tại trạm Long Biên là 10,92m, trên BĐ2 0,42m.",
        "Lúc mười chín giờ ngày mười một tháng chín, mực nước sông Hồng tại trạm Long Biên là mười phẩy chín mươi "
        "hai mét, trên báo động hai không phẩy bốn mươi hai mét.",
    ),
    (
        "Ban Chỉ huy PCTT&TKCN phường yêu cầu các hộ dân ven đê di dời trước 17h hôm nay.",
        "Ban Chỉ huy phòng chống thiên tai và tìm kiếm cứu nạn phường yêu cầu các hộ dân ven đê di dời trước mười "
        "bảy giờ hôm nay.",
    ),
    (
        "Đã sơ tán 125 hộ/432 nhân khẩu đến nơi an toàn.",
        "Đã sơ tán một trăm hai mươi lăm hộ với bốn trăm ba mươi hai nhân khẩu đến nơi an toàn.",
    ),
    (
        "Hưởng ứng Ngày Môi trường thế giới 5/6, ra quân tổng vệ sinh vào Chủ nhật 8/6.",
        "Hưởng ứng Ngày Môi trường thế giới ngày mùng năm tháng sáu, ra quân tổng vệ sinh vào Chủ nhật ngày mùng "
        "tám tháng sáu.",
    ),
    (
        "Thu gom rác thải từ 18h-20h hằng ngày, không đổ rác sau 21h.",
        "Thu gom rác thải từ mười tám giờ đến hai mươi giờ hằng ngày, không đổ rác sau hai mươi mốt giờ.",
    ),
    (
        "Phạt từ 500.000-1.000.000 đồng đối với hành vi vứt rác ra đường.",
        "Phạt từ năm trăm nghìn đến một triệu đồng đối với hành vi vứt rác ra đường.",
    ),
    (
        "Sở Y tế khuyến cáo người dân thực hiện thông điệp 5K.",
        "Sở Y tế khuyến cáo người dân thực hiện thông điệp năm ca.",
    ),
    (
        "Tiêm nhắc lại vắc xin phòng Covid-19 mũi 4 cho người trên 50 tuổi.",
        "Tiêm nhắc lại vắc xin phòng cô vít mười chín mũi bốn cho người trên năm mươi tuổi.",
    ),
    (
        "Phát hiện 01 ca mắc cúm A/H5N1 tại tỉnh lân cận.",
        "Phát hiện một ca mắc cúm a hát năm en nờ một tại tỉnh lân cận.",
    ),
    (
        "Thực hiện Chỉ thị 05-CT/TW về đẩy mạnh học tập và làm theo tư tưởng, đạo đức, phong cách Hồ Chí Minh.",
        "Thực hiện Chỉ thị năm của Trung ương về đẩy mạnh học tập và làm theo tư tưởng, đạo đức, phong cách Hồ "
        "Chí Minh.",
    ),
    (
        "Nghị quyết 18-NQ/TW ngày 25/10/2017 về sắp xếp tổ chức bộ máy.",
        "Nghị quyết mười tám của Trung ương ngày hai mươi lăm tháng mười năm hai nghìn không trăm mười bảy về sắp "
        "xếp tổ chức bộ máy.",
    ),
    (
        "Luật Đất đai số 31/2024/QH15 có hiệu lực từ ngày 1/8/2024.",
        "Luật Đất đai số ba mươi mốt năm hai nghìn không trăm hai mươi tư của Quốc hội khóa mười lăm có hiệu lực "
        "từ ngày mùng một tháng tám năm hai nghìn không trăm hai mươi tư.",
    ),
    (
        "Luật Căn cước 2023 có hiệu lực thi hành từ ngày 1/7/2024.",
        "Luật Căn cước hai nghìn không trăm hai mươi ba có hiệu lực thi hành từ ngày mùng một tháng bảy năm hai "
        "nghìn không trăm hai mươi tư.",
    ),
    (
        "Theo khoản 1 Điều 8 Luật Nghĩa vụ quân sự năm 2015.",
        "Theo khoản một Điều tám Luật Nghĩa vụ quân sự năm hai nghìn không trăm mười lăm.",
    ),
    (
        "Điểm b khoản 2 Điều 6 Nghị định 100/2019/NĐ-CP.",
        "Điểm b khoản hai Điều sáu Nghị định một trăm năm hai nghìn không trăm mười chín của Chính phủ.",
    ),
    (
        "Quyết định 06/QĐ-TTg về phát triển ứng dụng dữ liệu dân cư giai đoạn 2022-2025, tầm nhìn đến năm 2030.",
        "Quyết định sáu của Thủ tướng Chính phủ về phát triển ứng dụng dữ liệu dân cư giai đoạn hai nghìn không "
        "trăm hai mươi hai đến hai nghìn không trăm hai mươi lăm, tầm nhìn đến năm hai nghìn không trăm ba mươi.",
    ),
    (
        "Phường Kim Liên thuộc quận Đống Đa, TP Hà Nội, diện tích 0,95 km2.",
        "Phường Kim Liên thuộc quận Đống Đa, thành phố Hà Nội, diện tích không phẩy chín mươi lăm ki lô mét vuông.",
    ),
    (
        "Tuyến đường dài 850m, mặt cắt ngang rộng 13,5m.",
        "Tuyến đường dài tám trăm năm mươi mét, mặt cắt ngang rộng mười ba phẩy năm mét.",
    ),
    (
        "Dự án có tổng mức đầu tư 45,6 tỷ đồng, thời gian thi công 18 tháng.",
        "Dự án có tổng mức đầu tư bốn mươi lăm phẩy sáu tỷ đồng, thời gian thi công mười tám tháng.",
    ),
    (
        "Chiều 25/12, đ/c Bí thư Đảng ủy phường làm việc với TDP 2.",
        "Chiều ngày hai mươi lăm tháng mười hai, đồng chí Bí thư Đảng ủy phường làm việc với tổ dân phố hai.",
    ),
    (
        "Mời đ/c Tổ trưởng TDP 1-10 dự họp lúc 8h30 sáng mai.",
        "Mời đồng chí Tổ trưởng tổ dân phố một đến mười dự họp lúc tám giờ ba mươi phút sáng mai.",
    ),
    (
        "Đội văn nghệ phường biểu diễn phục vụ bà con vào 20h tối thứ 7 (28/6).",
        "Đội văn nghệ phường biểu diễn phục vụ bà con vào hai mươi giờ tối thứ bảy, ngày hai mươi tám tháng sáu.",
    ),
    (
        "Giải cầu lông CLB phường mở rộng lần thứ 5, từ ngày 12-14/7/2025.",
        "Giải cầu lông câu lạc bộ phường mở rộng lần thứ năm, từ ngày mười hai đến mười bốn tháng bảy năm hai "
        "nghìn không trăm hai mươi lăm.",
    ),
    ("Lớp tập huấn kỹ năng sơ cấp cứu cho 60 học viên.", "Lớp tập huấn kỹ năng sơ cấp cứu cho sáu mươi học viên."),
    (
        "Số điện thoại đường dây nóng của Trạm Y tế phường là 0243.852.1115.",
        "Số điện thoại đường dây nóng của Trạm Y tế phường là không hai bốn ba tám năm hai một một một năm.",
    ),
    (
        "Gọi 114 khi phát hiện cháy, 113 khi có trộm cướp, 115 khi cần cấp cứu.",
        "Gọi một một bốn khi phát hiện cháy, một một ba khi có trộm cướp, một một năm khi cần cấp cứu.",
    ),
    ("Tổng đài 1022 hỗ trợ người dân Hà Nội.", "Tổng đài một không hai hai hỗ trợ người dân Hà Nội."),
    (
        "Vui lòng gọi 18001091 để được hướng dẫn.",
        "Vui lòng gọi một tám không không một không chín một để được hướng dẫn.",
    ),
    (
        "Chi tiết xem tại www.hanoi.gov.vn hoặc trang Facebook Công an phường.",
        "Chi tiết xem tại hanoi chấm gov chấm vn hoặc trang Facebook Công an phường.",
    ),
    ("Quét mã QR để tải ứng dụng iHanoi.", "Quét mã cu a để tải ứng dụng iHanoi."),
    ("Chúc bà con một năm mới an khang thịnh vượng!", "Chúc bà con một năm mới an khang thịnh vượng!"),
    ("Lượng mưa 200-300mm.", "Lượng mưa hai trăm đến ba trăm mi li mét."),
    ("Nhiệt độ 30 độ C, độ ẩm 85%.", "Nhiệt độ ba mươi độ xê, độ ẩm tám mươi lăm phần trăm."),
    (
        "Vị trí tâm bão ở vào khoảng 20,5 độ Vĩ Bắc; 107,8 độ Kinh Đông.",
        "Vị trí tâm bão ở vào khoảng hai mươi phẩy năm độ Vĩ Bắc; một trăm linh bảy phẩy tám độ Kinh Đông.",
    ),
    (
        "Sức gió mạnh nhất vùng gần tâm bão mạnh cấp 10 (89-102 km/h), giật cấp 12.",
        "Sức gió mạnh nhất vùng gần tâm bão mạnh cấp mười, tám mươi chín đến một trăm linh hai ki lô mét một giờ, "
        "giật cấp mười hai.",
    ),
    ("Bão số 3 mạnh cấp 12-13, giật cấp 15.", "Bão số ba mạnh cấp mười hai đến mười ba, giật cấp mười lăm."),
    (
        "Mực nước sông Hồng tại Hà Nội lúc 7h ngày 10/9 là 9,5m.",
        "Mực nước sông Hồng tại Hà Nội lúc bảy giờ ngày mùng mười tháng chín là chín phẩy năm mét.",
    ),
    ("Phòng chống dịch Covid-19.", "Phòng chống dịch cô vít mười chín."),
    ("Tiêm vắc-xin mũi 3.", "Tiêm vắc xin mũi ba."),
    ("Phòng chống sốt xuất huyết và cúm H5N1.", "Phòng chống sốt xuất huyết và cúm hát năm en nờ một."),
    ("Đạt 12/12 tổ dân phố.", "Đạt mười hai trên mười hai tổ dân phố."),
    ("Phun thuốc tại tổ 3, 5 và 7.", "Phun thuốc tại tổ ba, năm và bảy."),
    ("Thôn 2 mất điện từ 7h-11h.", "Thôn hai mất điện từ bảy giờ đến mười một giờ."),
    ("Cấm xe trên Quốc lộ 1A và QL5.", "Cấm xe trên Quốc lộ một a và quốc lộ năm."),
    (
        "Ông Nguyễn Văn Hùng, số nhà 25/3 đường Lê Lợi.",
        "Ông Nguyễn Văn Hùng, số nhà hai mươi lăm trên ba đường Lê Lợi.",
    ),
    ("Đăng ký từ ngày 1 đến 5/10.", "Đăng ký từ ngày mùng một đến mùng năm tháng mười."),
    ("Làm việc cả T7, CN.", "Làm việc cả thứ bảy, chủ nhật."),
    ("Trực 24/7.", "Trực hai mươi tư trên bảy."),
    ("Kết quả quý IV đạt 95%.", "Kết quả quý bốn đạt chín mươi lăm phần trăm."),
    ("Quốc hội khóa XV, kỳ họp thứ 8.", "Quốc hội khóa mười lăm, kỳ họp thứ tám."),
    ("Đại hội Đảng toàn quốc lần thứ XIII.", "Đại hội Đảng toàn quốc lần thứ mười ba."),
    ("Hội nghị lần thứ 4 Ban Chấp hành Trung ương.", "Hội nghị lần thứ tư Ban Chấp hành Trung ương."),
    ("Đạt hạng 1 toàn quận.", "Đạt hạng nhất toàn quận."),
    ("Đứng thứ 1 toàn thành phố.", "Đứng thứ nhất toàn thành phố."),
    ("Số tiền 750.000 đồng.", "Số tiền bảy trăm năm mươi nghìn đồng."),
    ("Tổng kinh phí 2,5 tỷ đồng.", "Tổng kinh phí hai phẩy năm tỷ đồng."),
    ("Giá vé 1.200.000đ.", "Giá vé một triệu hai trăm nghìn đồng."),
    ("Hỗ trợ 500k/hộ.", "Hỗ trợ năm trăm nghìn một hộ."),
    ("Nộp 50.000 VNĐ.", "Nộp năm mươi nghìn đồng."),
    (
        "Diện tích 120 m2, tương đương 120 m².",
        "Diện tích một trăm hai mươi mét vuông, tương đương một trăm hai mươi mét vuông.",
    ),
    (
        "Diện tích tự nhiên 1,2 km2, đất nông nghiệp 35 ha.",
        "Diện tích tự nhiên một phẩy hai ki lô mét vuông, đất nông nghiệp ba mươi lăm héc ta.",
    ),
    ("Trọng lượng 50 kg, xe 2 tấn.", "Trọng lượng năm mươi ki lô gam, xe hai tấn."),
    (
        "Chiều cao 150 cm, nước 20 l, dầu 5 lít.",
        "Chiều cao một trăm năm mươi xen ti mét, nước hai mươi lít, dầu năm lít.",
    ),
    ("Tốc độ 60 km/h, gió 10 m/s.", "Tốc độ sáu mươi ki lô mét một giờ, gió mười mét trên giây."),
    ("Liên hệ 0912 345 678.", "Liên hệ không chín một hai ba bốn năm sáu bảy tám."),
    ("Điện thoại 0243.123.456.", "Điện thoại không hai bốn ba một hai ba bốn năm sáu."),
    ("Hotline 1900 1234.", "Hotline một chín không không một hai ba bốn."),
    ("Gọi 113, 114, 115.", "Gọi một một ba, một một bốn, một một năm."),
    (
        "Theo Luật số 100/2015/QH13.",
        "Theo Luật số một trăm năm hai nghìn không trăm mười lăm của Quốc hội khóa mười ba.",
    ),
    ("Căn cứ Nghị định 15/2020/NĐ-CP.", "Căn cứ Nghị định mười lăm năm hai nghìn không trăm hai mươi của Chính phủ."),
    ("Chỉ thị 05/CT-UBND của UBND phường.", "Chỉ thị năm của ủy ban nhân dân phường."),
    ("Số 123/QĐ-UBND.", "Số một trăm hai mươi ba quyết định của Ủy ban nhân dân."),
    ("Theo Điều 5, khoản 2.", "Theo Điều năm, khoản hai."),
    ("Thực hiện Chỉ thị số 16.", "Thực hiện Chỉ thị số mười sáu."),
    ("UBND, HĐND, MTTQ phường.", "ủy ban nhân dân, hội đồng nhân dân, mặt trận tổ quốc phường."),
    ("CQTT Ban chỉ đạo.", "cơ quan thường trực Ban chỉ đạo."),
    ("Giải quyết TTHC, đẩy mạnh CCHC.", "Giải quyết thủ tục hành chính, đẩy mạnh cải cách hành chính."),
    (
        "BCĐ phường, trường THCS, trường THPT.",
        "ban chỉ đạo phường, trường trung học cơ sở, trường trung học phổ thông.",
    ),
    ("Cấp thẻ BHYT, sổ BHXH, thẻ CCCD.", "Cấp thẻ bảo hiểm y tế, sổ bảo hiểm xã hội, thẻ căn cước công dân."),
    ("Tuyên truyền PCCC, ATGT.", "Tuyên truyền phòng cháy chữa cháy, an toàn giao thông."),
    ("Tiếp xúc ĐBQH.", "Tiếp xúc đại biểu quốc hội."),
    ("KP 3, TDP 5, CA phường, CSGT.", "khu phố ba, tổ dân phố năm, công an phường, cảnh sát giao thông."),
    ("Ban chỉ huy PCTT và TKCN.", "Ban chỉ huy phòng chống thiên tai và tìm kiếm cứu nạn."),
    ("Dân số 40.500 người.", "Dân số bốn mươi nghìn năm trăm người."),
    ("Tỷ lệ 12,75%.", "Tỷ lệ mười hai phẩy bảy mươi lăm phần trăm."),
    ("Tăng 20-25%.", "Tăng hai mươi đến hai mươi lăm phần trăm."),
    ("Năm 2025.", "Năm hai nghìn không trăm hai mươi lăm."),
    ("Giai đoạn 2016-2020.", "Giai đoạn hai nghìn không trăm mười sáu đến hai nghìn không trăm hai mươi."),
    ("Ngày 14/4/2018.", "Ngày mười bốn tháng tư năm hai nghìn không trăm mười tám."),
    ("Ngày 2/9.", "Ngày mùng hai tháng chín."),
    ("Ngày 09/04/2022.", "Ngày mùng chín tháng tư năm hai nghìn không trăm hai mươi hai."),
    ("Ngày 1/5.", "Ngày mùng một tháng năm."),
    ("Tháng 1, tháng 4, tháng 12.", "Tháng một, tháng tư, tháng mười hai."),
    ("Lúc 6h45.", "Lúc sáu giờ bốn mươi lăm phút."),
    ("Lúc 14h00.", "Lúc mười bốn giờ."),
    ("Lúc 6 giờ 45.", "Lúc sáu giờ bốn mươi lăm."),
    ("Lúc 6h.", "Lúc sáu giờ."),
    ("Lúc 17h30'.", "Lúc mười bảy giờ ba mươi phút."),
    ("Đạt 12/20 hộ.", "Đạt mười hai trên hai mươi hộ."),
    ("Thứ 2 tuần sau.", "Thứ hai tuần sau."),
    ("Lần thứ 4.", "Lần thứ tư."),
    ("Khoảng 2/3 dân số đã được tiêm đủ liều.", "Khoảng hai phần ba dân số đã được tiêm đủ liều."),
    (
        "Nghỉ lễ 30-4 và 1-5 năm 2025.",
        "Nghỉ lễ ngày ba mươi tháng tư và ngày mùng một tháng năm năm hai nghìn không trăm hai mươi lăm.",
    ),
    ("Đội TDP 3 thắng 3-1 trong trận chung kết.", "Đội tổ dân phố ba thắng ba một trong trận chung kết."),
    ("Nồng độ cồn vượt quá 0,4 mg/l khí thở.", "Nồng độ cồn vượt quá không phẩy bốn mi li gam trên lít khí thở."),
    (
        "Giá 150.000đ/m2, lãi suất 10%/năm.",
        "Giá một trăm năm mươi nghìn đồng một mét vuông, lãi suất mười phần trăm một năm.",
    ),
    ("Các ngày 2, 3 và 4/9 nghỉ lễ.", "Các ngày mùng hai, mùng ba và mùng bốn tháng chín nghỉ lễ."),
    ("Xe biển số 29A-123.45 vi phạm tốc độ.", "Xe biển số hai chín a một hai ba bốn năm vi phạm tốc độ."),
    (
        "Tuyến ĐT 741 bị sạt lở tại Km 15+500.",
        "Tuyến đường tỉnh bảy trăm bốn mươi mốt bị sạt lở tại ki lô mét mười lăm cộng năm trăm.",
    ),
    ("Mã hồ sơ: H26.55-250312-0001.", "Mã hồ sơ: hát hai sáu năm năm hai năm không ba một hai không không không một."),
    ("Lúc 7g sáng mai, tập trung tại sân nhà văn hóa.", "Lúc bảy giờ sáng mai, tập trung tại sân nhà văn hóa."),
    (
        "Huy chương vàng đạt giải 1, huy chương bạc đạt giải 2.",
        "Huy chương vàng đạt giải nhất, huy chương bạc đạt giải nhì.",
    ),
    ("Đô thị loại I, Chi cục Thuế khu vực II.", "Đô thị loại một, Chi cục Thuế khu vực hai."),
    ("Gọi 113, 114, 115 khi cần thiết.", "Gọi một một ba, một một bốn, một một năm khi cần thiết."),
    (
        "Vận động 100% hộ gia đình tham gia thông điệp 5K.",
        "Vận động một trăm phần trăm hộ gia đình tham gia thông điệp năm ca.",
    ),
    (
        "Đề nghị công dân nam trong độ tuổi từ 17 đến 45 đăng ký NVQS lần đầu tại Ban CHQS phường.",
        "Đề nghị công dân nam trong độ tuổi từ mười bảy đến bốn mươi lăm đăng ký nghĩa vụ quân sự lần đầu tại Ban "
        "chỉ huy quân sự phường.",
    ),
    (
        "Phường tổ chức tiêm vắc xin phòng bệnh dại cho chó, mèo vào ngày 20 và 21/4/2025, mức thu 80.000đ/con.",
        "Phường tổ chức tiêm vắc xin phòng bệnh dại cho chó, mèo vào ngày hai mươi và hai mươi mốt tháng tư năm "
        "hai nghìn không trăm hai mươi lăm, mức thu tám mươi nghìn đồng một con.",
    ),
    (
        "Thông tin về cơn bão số 1 năm 2025: hồi 16 giờ ngày 12/6, vị trí tâm bão ở khoảng 17,2 độ Vĩ Bắc; 112,5 "
        "độ Kinh Đông.",
        "Thông tin về cơn bão số một năm hai nghìn không trăm hai mươi lăm: hồi mười sáu giờ ngày mười hai tháng "
        "sáu, vị trí tâm bão ở khoảng mười bảy phẩy hai độ Vĩ Bắc; một trăm mười hai phẩy năm độ Kinh Đông.",
    ),
    (
        "Từ chiều tối 13/6, vùng biển Quảng Trị - Quảng Ngãi có gió mạnh cấp 6-7.",
        "Từ chiều tối ngày mười ba tháng sáu, vùng biển Quảng Trị, Quảng Ngãi có gió mạnh cấp sáu đến bảy.",
    ),
    (
        "Mức giảm trừ gia cảnh cho bản thân người nộp thuế là 11 triệu đồng/tháng, người phụ thuộc 4,4 triệu "
        "đồng/tháng.",
        "Mức giảm trừ gia cảnh cho bản thân người nộp thuế là mười một triệu đồng một tháng, người phụ thuộc bốn "
        "phẩy bốn triệu đồng một tháng.",
    ),
    (
        "Giá điện sinh hoạt bậc 1 từ 0-50 kWh là 1.893 đồng/kWh.",
        "Giá điện sinh hoạt bậc một từ không đến năm mươi ki lô oát giờ là một nghìn tám trăm chín mươi ba đồng "
        "một ki lô oát giờ.",
    ),
    (
        "Trạm bơm Yên Sở đã vận hành 20 máy bơm với công suất 45 m3/s.",
        "Trạm bơm Yên Sở đã vận hành hai mươi máy bơm với công suất bốn mươi lăm mét khối trên giây.",
    ),
    (
        "Vào hồi 9h30 ngày 05/6/2025, tại ngã tư Kim Liên xảy ra va chạm giữa xe ô tô BKS 30G-123.45 và xe máy.",
        "Vào hồi chín giờ ba mươi phút ngày mùng năm tháng sáu năm hai nghìn không trăm hai mươi lăm, tại ngã tư "
        "Kim Liên xảy ra va chạm giữa xe ô tô biển kiểm soát ba không giê một hai ba bốn năm và xe máy.",
    ),
    (
        "Cuộc họp tổ dân phố số 12 sẽ diễn ra lúc 19h30' tối nay.",
        "Cuộc họp tổ dân phố số mười hai sẽ diễn ra lúc mười chín giờ ba mươi phút tối nay.",
    ),
    (
        "Phường phát động đợt cao điểm diệt chuột từ ngày 10/3 - 30/3.",
        "Phường phát động đợt cao điểm diệt chuột từ ngày mùng mười tháng ba đến ngày ba mươi tháng ba.",
    ),
    (
        "Từ ngày 01-05/8/2025, tiêm chủng tại NVH TDP 7.",
        "Từ ngày mùng một đến mùng năm tháng tám năm hai nghìn không trăm hai mươi lăm, tiêm chủng tại nhà văn "
        "hóa tổ dân phố bảy.",
    ),
    (
        "Khám sàng lọc miễn phí cho người từ 60+ tuổi; PGS.TS. Nguyễn Văn An trực tiếp tư vấn.",
        "Khám sàng lọc miễn phí cho người từ sáu mươi tuổi trở lên; phó giáo sư tiến sĩ Nguyễn Văn An trực tiếp "
        "tư vấn.",
    ),
    (
        "Thông báo số 45/TB-UBND về lịch tiếp công dân tháng 6/2025.",
        "Thông báo số bốn mươi lăm của Ủy ban nhân dân về lịch tiếp công dân tháng sáu năm hai nghìn không trăm "
        "hai mươi lăm.",
    ),
    (
        "Lúc 15h30 chiều nay, thắp sáng 200 bóng đèn 3,5 W.",
        "Lúc mười lăm giờ ba mươi phút chiều nay, thắp sáng hai trăm bóng đèn ba phẩy năm oát.",
    ),
]


@pytest.mark.parametrize(("text", "expected"), ANNOUNCEMENTS)
def test_announcement_sentence(text, expected):
    assert normalize(text) == expected


def test_announcement_sentences_are_distinct_and_many():
    inputs = [text for text, _ in ANNOUNCEMENTS]
    assert len(set(inputs)) == len(inputs) >= 150


def test_whole_announcement():
    text = (
        "THÔNG BÁO\n"
        "Về việc tiêm vắc xin sởi cho trẻ từ 1-5 tuổi\n"
        "Thời gian: 7h30 - 11h00, thứ 7 ngày 22/3/2025.\n"
        "Địa điểm: TYT phường. Liên hệ đ/c Lan, SĐT 0912.345.678."
    )
    assert normalize(text) == (
        "THÔNG BÁO. Về việc tiêm vắc xin sởi cho trẻ từ một đến năm tuổi. "
        "Thời gian: bảy giờ ba mươi phút đến mười một giờ, thứ bảy ngày hai mươi hai tháng ba năm "
        "hai nghìn không trăm hai mươi lăm. Địa điểm: trạm y tế phường. Liên hệ đồng chí Lan, "
        "số điện thoại không chín một hai ba bốn năm sáu bảy tám."
    )


# ------------------------------------------------------------------------------------- dictionary, misc


def test_default_dictionary_is_large_and_clean():
    assert len(DEFAULT_ABBREVIATIONS) >= 60
    for key, value in DEFAULT_ABBREVIATIONS.items():
        assert key.strip() == key and value.strip() == value
        assert not re.search(r"[0-9]", value), key


def test_ward_can_add_and_override_abbreviations():
    assert normalize("Liên hệ BQL KĐT") == "Liên hệ ban quản lý ca đê tê"
    assert normalize("Liên hệ BQL KĐT", abbreviations={"KĐT": "khu đô thị"}) == "Liên hệ ban quản lý khu đô thị"
    assert normalize("TT Y tế", abbreviations={"TT": "trung tâm"}) == "trung tâm Y tế"
    assert normalize("TT văn hóa", abbreviations={"TT": "thông tin"}) == "thông tin văn hóa"
    assert normalize("KP 3", abbreviations={"KP": "khu phố"}) == "khu phố ba"
    # the default table is not modified by an override
    assert DEFAULT_ABBREVIATIONS["TT"] == "trung tâm"


def test_abbreviations_are_case_sensitive():
    assert normalize("Ca trực") == "Ca trực"
    assert normalize("CA phường") == "công an phường"


def test_output_is_nfc():
    nfd = unicodedata.normalize("NFD", "Ủy ban nhân dân phường họp lúc 7h30")
    out = normalize(nfd)
    assert out == unicodedata.normalize("NFC", out)
    assert out == "Ủy ban nhân dân phường họp lúc bảy giờ ba mươi phút"


def test_pause_punctuation_is_kept():
    out = normalize("Chú ý: bão số 3; gió mạnh! Có mưa không? Có, mưa to.")
    assert out == "Chú ý: bão số ba; gió mạnh! Có mưa không? Có, mưa to."


def test_empty_and_whitespace():
    assert normalize("") == ""
    assert normalize("   \n\t ") == ""


# ----------------------------------------------------------------------------------------- properties

_DIGIT_WORDS = {"không": 0, "một": 1, "mốt": 1, "hai": 2, "ba": 3, "bốn": 4, "tư": 4, "năm": 5, "lăm": 5,
                "sáu": 6, "bảy": 7, "tám": 8, "chín": 9}  # fmt: skip


def _parse_group(words: list[str]) -> int:
    value = 0
    if "trăm" in words:
        value, words = 100 * _DIGIT_WORDS[words[0]], words[2:]
    if not words:
        return value
    if words[0] == "linh":
        return value + _DIGIT_WORDS[words[1]]
    if words[0] == "mười":
        return value + 10 + (_DIGIT_WORDS[words[1]] if len(words) > 1 else 0)
    if len(words) > 1 and words[1] == "mươi":
        return value + 10 * _DIGIT_WORDS[words[0]] + (_DIGIT_WORDS[words[2]] if len(words) > 2 else 0)
    assert len(words) == 1
    return value + _DIGIT_WORDS[words[0]]


def _parse(words: list[str]) -> int:
    """Inverse of read_number, to check the reading is the right number."""
    if "tỷ" in words:
        i = len(words) - 1 - words[::-1].index("tỷ")
        return _parse(words[:i]) * 10**9 + (_parse(words[i + 1 :]) if words[i + 1 :] else 0)
    total = 0
    for unit, scale in (("triệu", 10**6), ("nghìn", 10**3)):
        if unit in words:
            i = words.index(unit)
            total += _parse_group(words[:i]) * scale
            words = words[i + 1 :]
    return total + (_parse_group(words) if words else 0)


@settings(max_examples=400, deadline=None)
@given(st.integers(min_value=0, max_value=10**12 - 1))
def test_read_number_properties(n):
    text = read_number(n)
    assert not re.search(r"[0-9]", text)
    assert "mươi một" not in text  # 21 is "hai mươi mốt"
    assert "mươi năm" not in text  # 25 is "hai mươi lăm"
    assert "mười năm" not in text  # 15 is "mười lăm"
    assert "mươi bốn" not in text  # 24 is "hai mươi tư"
    assert "mười mốt" not in text and "mười tư" not in text and "linh mốt" not in text
    words = text.split()
    for i, w in enumerate(words):
        if w in ("mốt", "tư"):
            assert words[i - 1] == "mươi", text
        if w == "lăm":
            assert words[i - 1] in ("mươi", "mười"), text
    assert _parse(words) == n, text


_ANNOUNCEMENT_BITS = st.sampled_from(
    ["0", "1", "2", "5", "9", "12", "2025", "1.250", "12,5", "/", "-", ".", ",", ":", "%", "h", "đ", "m2", "°C",
     " ", " ngày ", " tháng ", " thứ ", " gọi ", "SĐT ", "UBND", "QH", "NĐ-CP", "/2024/", " khóa ", "XV", "(",
     ")", "'", "+", "~", "T2", "CN", "km/h", "\n", "- ", "TP.", "P.", "@", "www.", ".vn", "x", "²", "Đ/c"]
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=60), st.lists(_ANNOUNCEMENT_BITS, max_size=25).map("".join)))
def test_normalize_never_raises_and_leaves_no_digit(text):
    out = normalize(text)
    assert isinstance(out, str)
    assert not re.search(r"[0-9]", out), (text, out)
    assert out == unicodedata.normalize("NFC", out)


_VIET_WORDS = st.sampled_from(
    ["ngày", "tháng", "năm", "lúc", "từ", "đến", "và", "hộ", "người", "tổ", "thôn", "phường", "số", "nhà", "bão",
     "cấp", "giật", "mực", "nước", "mưa", "lũ", "đồng", "tỷ", "triệu", "phí", "thuế", "khóa", "lần thứ", "quý",
     "thứ", "hạng", "giải", "Điều", "khoản", "Nghị định", "Quyết định", "Chỉ thị", "gọi", "điện thoại", "tiêm",
     "mũi", "vắc-xin", "Covid-19", "UBND", "HĐND", "TDP", "KP", "CA", "BHYT", "CCCD", "PCCC", "QL", "T7", "CN",
     "sáng", "chiều", "tối", "hôm nay", "Quốc lộ", "Tổng đài", "mã hồ sơ", "biển số", "vĩ độ", "Kinh Đông"]
)  # fmt: skip
_NUMBER_TOKENS = st.one_of(
    st.integers(0, 10**13).map(str),
    st.integers(1000, 10**12).map(lambda n: f"{n:,}".replace(",", ".")),
    st.tuples(st.integers(0, 999), st.integers(0, 999)).map(lambda t: f"{t[0]},{t[1]}"),
    st.tuples(st.integers(0, 40), st.integers(0, 40), st.integers(1900, 2100)).map(lambda t: f"{t[0]}/{t[1]}/{t[2]}"),
    st.tuples(st.integers(0, 40), st.integers(0, 40)).map(lambda t: f"{t[0]}/{t[1]}"),
    st.tuples(st.integers(0, 30), st.integers(0, 70)).map(lambda t: f"{t[0]}h{t[1]:02d}"),
    st.tuples(st.integers(0, 99), st.integers(0, 99)).map(lambda t: f"{t[0]}-{t[1]}"),
    st.integers(0, 99).map(lambda n: f"{n}%"),
    st.integers(0, 999).map(lambda n: f"{n}km/h"),
    st.integers(0, 10**9).map(lambda n: f"09{n:08d}"),
    st.sampled_from(["113", "114", "115", "1900 1234", "0243.123.456", "100/2015/QH13", "15/2020/NĐ-CP",
                     "05/CT-UBND", "29A-123.45", "H5N1", "A/H5N1", "1A", "XV", "IV", "20,5°N", "107,8°E", "500k",
                     "m2", "m²", "°C", "mm", "ha", "kg", "5K", "24/7", "12/12", "2016-2020"]),
)  # fmt: skip
_SEPARATORS = st.sampled_from([" ", " ", " ", ", ", ". ", "; ", ": ", " - ", "/", "-", " (", ") ", "\n", "", "'"])
_MIXED_TEXT = st.lists(st.tuples(st.one_of(_VIET_WORDS, _NUMBER_TOKENS), _SEPARATORS), max_size=20).map(
    lambda parts: "".join(token + sep for token, sep in parts)
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_MIXED_TEXT)
def test_mixed_announcement_text_has_no_digit_and_is_idempotent(text):
    out = normalize(text)
    assert not re.search(r"[0-9]", out), (text, out)
    assert normalize(out) == out, (text, out)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=60), st.lists(_ANNOUNCEMENT_BITS, max_size=25).map("".join)))
def test_normalize_is_idempotent(text):
    out = normalize(text)
    assert normalize(out) == out, (text, out)


# ----------------------------------------------------------------------------------------- imports


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("name", ["normalize.py", "abbreviations.py"])
def test_no_num2words_flask_or_paho(name):
    assert not _imported_modules(AUDIO_DIR / name) & {"num2words", "flask", "paho"}


def test_num2words_not_loaded_at_run_time():
    code = (
        "import sys; from audio.normalize import normalize; normalize('Năm 2025, 12,5%'); "
        "print('num2words' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=AUDIO_DIR.parent,
    )
    assert result.stdout.strip() == "False"
